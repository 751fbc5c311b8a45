// bench/tools/holders: a host with many open files, for timing a holder scan.
//
//   holders N M FILLER [HELD]
//
// Forks N processes that each open FILLER M times, and (with HELD) one more process that opens
// HELD once: the one a scan must find. Prints "ready PID-OF-HELD-HOLDER" (0 without HELD) once
// every process holds its files, then waits for its stdin to close and takes them all down.
// Every child also dies with this process (PR_SET_PDEATHSIG).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static pid_t spawn(const char* path, int count, int ready) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < (rlim_t)count + 16) {
        limit.rlim_cur = (rlim_t)count + 16;
        if (limit.rlim_max < limit.rlim_cur) limit.rlim_max = limit.rlim_cur;
        if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
            perror("holders: setrlimit");
            _exit(1);
        }
    }
    for (int i = 0; i < count; ++i) {
        if (open(path, O_RDONLY) < 0) {
            fprintf(stderr, "holders: open %s: %s\n", path, strerror(errno));
            _exit(1);
        }
    }
    char byte = 1;
    if (write(ready, &byte, 1) != 1) _exit(1);
    close(ready);
    for (;;) pause();
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: holders N M FILLER [HELD]\n");
        return 2;
    }
    int n = atoi(argv[1]), m = atoi(argv[2]);
    int ready[2];
    if (pipe(ready) != 0) return 1;
    pid_t* pids = calloc((size_t)n + 1, sizeof(pid_t));
    int spawned = 0;
    for (int i = 0; i < n; ++i) pids[spawned++] = spawn(argv[3], m, ready[1]);
    pid_t held = 0;
    if (argc > 4) pids[spawned++] = held = spawn(argv[4], 1, ready[1]);
    close(ready[1]);
    int fine = 1;
    for (int i = 0; i < spawned; ++i) {
        char byte;
        if (read(ready[0], &byte, 1) != 1) {
            fine = 0;
            break;
        }
    }
    if (fine) {
        printf("ready %d\n", (int)held);
        fflush(stdout);
        char buffer[256];
        while (read(0, buffer, sizeof buffer) > 0) {
        }
    } else {
        fprintf(stderr, "holders: a child failed to open its files\n");
    }
    for (int i = 0; i < spawned; ++i) kill(pids[i], SIGKILL);
    while (wait(NULL) > 0) {
    }
    return fine ? 0 : 1;
}
