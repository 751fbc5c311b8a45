// bench/tools/runner: runs several commands side by side, round-robin, and prints per-command
// statistics of their wall time. Each round runs every command once, in an order rotated by
// one each round, so that drift of the machine (another build, a cache warming up) falls on
// all commands alike instead of on whichever ran last.
//
//   runner [-n ROUNDS] [-w WARMUP] [-t SECONDS] [-e] :: LABEL STDIN PROGRAM [ARG...] [:: ...]
//
// STDIN is a file opened as the command's stdin ("-" for /dev/null); stdout and stderr go to
// /dev/null. The environment is what libvirt gives its hooks: LC_ALL=C and PATH.
// -t stops after the round in which SECONDS have passed (at least 3 rounds run).
// -e: a command that exits non-zero is an error (exit 3) instead of only being counted.
// Output, one line per command, tab-separated, times in microseconds in the order measured:
//   LABEL nonzero_exits last_status sample,sample,...
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct command {
    const char* label;
    const char* stdin_path;
    char** argv;
    double* samples;
    int count;
    int nonzero;
    int last_status;
};

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char* child_env[] = {"LC_ALL=C", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", NULL};

static int run_once(struct command* c, double* elapsed) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const char* in = strcmp(c->stdin_path, "-") == 0 ? "/dev/null" : c->stdin_path;
    posix_spawn_file_actions_addopen(&actions, 0, in, O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    double start = now_us();
    int error = posix_spawn(&pid, c->argv[0], &actions, NULL, c->argv, child_env);
    posix_spawn_file_actions_destroy(&actions);
    if (error) {
        fprintf(stderr, "runner: cannot run %s: %s\n", c->argv[0], strerror(error));
        exit(2);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
    }
    *elapsed = now_us() - start;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char** argv) {
    int rounds = 20, warmup = 3, strict = 0;
    double budget = 0;
    int i = 1;
    for (; i < argc && strcmp(argv[i], "::") != 0; ++i) {
        if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) budget = atof(argv[++i]);
        else if (strcmp(argv[i], "-e") == 0) strict = 1;
        else {
            fprintf(stderr, "usage: runner [-n ROUNDS] [-w WARMUP] [-t SECONDS] [-e] :: LABEL STDIN PROGRAM [ARG...] [:: ...]\n");
            return 2;
        }
    }
    struct command commands[64];
    int n = 0;
    while (i < argc) {  // argv[i] is "::"
        int start = ++i;
        while (i < argc && strcmp(argv[i], "::") != 0) ++i;
        if (i - start < 3 || n == 64) {
            fprintf(stderr, "runner: each command needs LABEL STDIN PROGRAM\n");
            return 2;
        }
        argv[i < argc ? i : argc] = NULL;  // terminates this command's argv (argv[argc] is NULL)
        struct command* c = &commands[n++];
        c->label = argv[start];
        c->stdin_path = argv[start + 1];
        c->argv = &argv[start + 2];
        c->samples = calloc((size_t)rounds, sizeof(double));
        c->count = c->nonzero = c->last_status = 0;
    }
    if (n == 0) {
        fprintf(stderr, "runner: no commands\n");
        return 2;
    }
    double begin = 0;
    for (int round = 0; round < warmup + rounds; ++round) {
        if (round == warmup) begin = now_us();
        for (int k = 0; k < n; ++k) {
            struct command* c = &commands[(k + round) % n];
            double elapsed;
            int status = run_once(c, &elapsed);
            if (round < warmup) continue;
            c->samples[c->count++] = elapsed;
            c->last_status = status;
            if (status != 0) {
                c->nonzero++;
                if (strict) {
                    fprintf(stderr, "runner: %s exited with status %d\n", c->label, status);
                    return 3;
                }
            }
        }
        if (budget > 0 && round >= warmup + 2 && now_us() - begin > budget * 1e6) break;
    }
    for (int k = 0; k < n; ++k) {
        struct command* c = &commands[k];
        printf("%s\t%d\t%d\t", c->label, c->nonzero, c->last_status);
        for (int j = 0; j < c->count; ++j) printf("%s%.1f", j ? "," : "", c->samples[j]);
        printf("\n");
    }
    return 0;
}
