/* The cfl program's subcommands: one file each, dispatched from main.c. */
#ifndef CFL_CMD_CMDS_H
#define CFL_CMD_CMDS_H

#include <stddef.h>

/* Exit codes of every subcommand. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_provision(int argc, char **argv);
int cmd_kit(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_package(int argc, char **argv);

/* Prints "cfl: <msg>" to stderr. */
void cmd_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The absolute path of the running cfl binary, or NULL. */
const char *cmd_self_path(void);

/* A whole decimal number in [min, max]; prints "bad WHAT 'S' (MIN..MAX)" and returns -1
 * otherwise. */
int cmd_parse_long(const char *what, const char *s, long min, long max, long *out);
/* Parses a TCP port, `min`..65535, into *port. Returns 0, or -1 after saying why. */
int cmd_parse_port(const char *s, int min, int *port);

/* Parses "HOST:PORT", ":PORT" or "[V6ADDR]:PORT" (PORT 1..65535) into host (size bytes; ""
 * when the argument has none) and *port. Returns 0, or -1 after saying why. */
int cmd_parse_server(const char *s, char *host, size_t size, int *port);

#endif
