// bench/tools/stepcount: runs a program under ptrace, one instruction at a time, and counts
// the instructions it executes in user space and how many of them are CPUID. In a virtual
// machine every CPUID is a VM exit (tens of microseconds when the VM is itself nested), so the
// count explains how much of a program's start-up is the machine rather than the program.
//
//   stepcount [-i STDIN] PROGRAM [ARG...]      prints "instructions N cpuid N"
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char** argv) {
    const char* in = "/dev/null";
    int first = 1;
    if (argc > 2 && strcmp(argv[1], "-i") == 0) {
        in = argv[2];
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: stepcount [-i STDIN] PROGRAM [ARG...]\n");
        return 2;
    }
    pid_t child = fork();
    if (child == 0) {
        int fd = open(in, O_RDONLY);
        if (fd >= 0) dup2(fd, 0);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[first], &argv[first]);
        _exit(127);
    }
    int status;
    waitpid(child, &status, 0);  // stopped at the exec
    unsigned long steps = 0, cpuid = 0;
    for (;;) {
        struct user_regs_struct regs;
        if (ptrace(PTRACE_GETREGS, child, 0, &regs) == 0) {
            errno = 0;
            long word = ptrace(PTRACE_PEEKTEXT, child, (void*)regs.rip, 0);
            if (errno == 0 && (word & 0xffff) == 0xa20f) ++cpuid;
        }
        if (ptrace(PTRACE_SINGLESTEP, child, 0, 0) != 0) break;
        if (waitpid(child, &status, 0) < 0 || WIFEXITED(status) || WIFSIGNALED(status)) break;
        ++steps;
    }
    printf("instructions %lu cpuid %lu\n", steps, cpuid);
    return 0;
}
