/* Reads an env file with systemd's own parser, the one EnvironmentFile= uses
 * (load_env_file in libsystemd-shared, src/basic/env-file.c), and prints every
 * NAME=value it yields followed by a NUL byte. Built by the tests against the installed
 * systemd 252 (systemd is not PID 1 here, so systemd-run cannot be used). */
#include <stdio.h>
#include <string.h>

int load_env_file(FILE *f, const char *fname, char ***ret);

int main(int argc, char **argv) {
    char **l = NULL;
    if (argc != 2)
        return 2;
    int r = load_env_file(NULL, argv[1], &l);
    if (r < 0) {
        fprintf(stderr, "load_env_file: %s\n", strerror(-r));
        return 1;
    }
    for (char **p = l; p && *p; p++)
        fwrite(*p, 1, strlen(*p) + 1, stdout);
    return 0;
}
