/* seccomp_exec: run a command under the seccomp rules edgefer.service asks systemd for, to measure
 * that the backends live with them (systemd itself is not needed).
 *
 *   seccomp_exec [--mdwe] [--deny SYSCALL]... -- COMMAND [ARG]...
 *
 * --mdwe is MemoryDenyWriteExecute=yes as systemd implements it with seccomp: mmap() of memory that is
 * both writable and executable, mprotect()/pkey_mprotect() adding PROT_EXEC and shmat(SHM_EXEC) fail.
 * --deny NAME makes that system call fail with EPERM (SystemCallFilter=~... with
 * SystemCallErrorNumber=EPERM). Only libseccomp's shared library is needed (no headers):
 *   cc -O1 -o seccomp_exec seccomp_exec.c /path/to/libseccomp.so.2
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef void *scmp_filter_ctx;
struct scmp_arg_cmp { unsigned int arg; int op; uint64_t datum_a; uint64_t datum_b; };
extern scmp_filter_ctx seccomp_init(uint32_t def_action);
extern int seccomp_rule_add(scmp_filter_ctx ctx, uint32_t action, int syscall, unsigned int arg_cnt, ...);
extern int seccomp_syscall_resolve_name(const char *name);
extern int seccomp_load(scmp_filter_ctx ctx);

#define ACT_ALLOW 0x7fff0000U
#define ACT_EPERM (0x00050000U | EPERM)
#define CMP_MASKED_EQ 7
#define SHM_EXEC_FLAG 0100000

int main(int argc, char **argv) {
    scmp_filter_ctx ctx = seccomp_init(ACT_ALLOW);
    int i = 1;
    if (!ctx) { fprintf(stderr, "seccomp_init failed\n"); return 99; }
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--mdwe") == 0) {
            struct scmp_arg_cmp wx = {2, CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE, PROT_EXEC | PROT_WRITE};
            struct scmp_arg_cmp x = {2, CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC};
            struct scmp_arg_cmp shm = {2, CMP_MASKED_EQ, SHM_EXEC_FLAG, SHM_EXEC_FLAG};
            if (seccomp_rule_add(ctx, ACT_EPERM, SYS_mmap, 1, wx) || seccomp_rule_add(ctx, ACT_EPERM, SYS_mprotect, 1, x)
                || seccomp_rule_add(ctx, ACT_EPERM, SYS_pkey_mprotect, 1, x)
                || seccomp_rule_add(ctx, ACT_EPERM, SYS_shmat, 1, shm)) {
                fprintf(stderr, "cannot add the MemoryDenyWriteExecute rules\n");
                return 99;
            }
        } else if (strcmp(argv[i], "--deny") == 0 && i + 1 < argc) {
            int nr = seccomp_syscall_resolve_name(argv[++i]);
            if (nr < 0) continue; /* not a system call on this architecture */
            if (seccomp_rule_add(ctx, ACT_EPERM, nr, 0)) { fprintf(stderr, "cannot deny %s\n", argv[i]); return 99; }
        } else {
            fprintf(stderr, "usage: seccomp_exec [--mdwe] [--deny SYSCALL]... -- COMMAND [ARG]...\n");
            return 99;
        }
    }
    if (i + 1 >= argc) { fprintf(stderr, "no command after --\n"); return 99; }
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (seccomp_load(ctx)) { perror("seccomp_load"); return 99; }
    execvp(argv[i + 1], argv + i + 1);
    perror("exec");
    return 98;
}
