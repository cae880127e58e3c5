/* The console at a terminal: a prompt, line editing, history and completion (libedit, when the
 * program was built with it and stdin is a terminal), else plain lines (admin_read_line).
 *
 * Lines are read from the session's event loop, one when stdin is readable, so that the
 * session keeps its heartbeats while nobody types (a blocking read would let the server's dead
 * timeout drop it). While a command waits for its reply stdin is not watched: what is typed
 * meanwhile waits in the terminal. */
#include "admin.h"

#include "cfl/loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CFL_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

#define PROMPT "cfl> "

static struct admin_ctx *con; /* one console per process; readline's callbacks take no argument */
static int editing;           /* libedit drives the terminal */
static int handler_on;        /* its line handler is installed (the terminal is in its modes) */

/* Handles a line, NULL at the end of the input. */
static enum admin_next take_line(const char *line)
{
	if (line == NULL) {
		if (isatty(STDIN_FILENO))
			fputc('\n', stdout);
		return ADMIN_QUIT;
	}
	return admin_dispatch(con, line);
}

static void after(enum admin_next next)
{
	if (next == ADMIN_QUIT)
		cfl_admin_quit(con->s, 0, NULL);
	else if (next == ADMIN_AGAIN)
		admin_console_ready(con->s, con);
}

/* Reads one line of stdin and handles it. stdin is unbuffered (admin_console_begin): the read
 * goes no further than the line, so that the next one is still in the file and wakes the loop.
 * A line too long for a command is refused whole (admin_read_line), never run in pieces. */
static enum admin_next plain_line(void)
{
	char buf[ADMIN_LINE_MAX + 1];

	switch (admin_read_line(stdin, buf, sizeof(buf))) {
	case 0:
		return take_line(NULL);
	case 1:
		return take_line(buf);
	default:
		admin_fail(con, CFL_EINVAL, "the line is too long (%d bytes at most)",
		           ADMIN_LINE_MAX);
		return ADMIN_AGAIN;
	}
}

static void prompt(void)
{
	if (isatty(STDIN_FILENO)) {
		fputs(PROMPT, stdout);
		fflush(stdout);
	}
}

static void on_stdin(struct cfl_loop *loop, int fd, int events, void *arg)
{
	(void)events;
	(void)arg;
#ifdef CFL_HAVE_LIBEDIT
	if (editing) {
		rl_callback_read_char(); /* calls on_edited_line at the end of a line */
		return;
	}
#endif
	cfl_loop_unwatch(loop, fd);
	after(plain_line());
}

#ifdef CFL_HAVE_LIBEDIT
static void on_edited_line(char *line)
{
	rl_callback_handler_remove();
	handler_on = 0;
	cfl_loop_unwatch(cfl_admin_loop(con->s), STDIN_FILENO);
	if (line != NULL && line[strspn(line, " \t")] != '\0')
		add_history(line);
	after(take_line(line));
	free(line);
}

/* Completion: command names first, then the values the table gives for the first argument;
 * other arguments complete as file names (submit_job's folder). */
static const char *const *cand_words; /* NULL: command names */
static size_t cand_i;

static char *next_candidate(const char *text, int state)
{
	size_t n = strlen(text);
	const char *w;

	if (state == 0)
		cand_i = 0;
	for (;;) {
		if (cand_words != NULL) {
			w = cand_words[cand_i];
		} else {
			const struct admin_cmd *c = admin_cmd_at(cand_i);

			w = c != NULL ? c->name : NULL;
		}
		if (w == NULL)
			return NULL;
		cand_i++;
		if (strncmp(w, text, n) == 0)
			return strdup(w);
	}
}

static char **complete(const char *text, int start, int end)
{
	char first[64] = "";
	const struct admin_cmd *c;
	int words = 0;

	(void)end;
	for (int i = 0; i < start; i++) { /* words before the one being completed */
		if (rl_line_buffer[i] != ' ' && rl_line_buffer[i] != '\t' &&
		    (i == 0 || rl_line_buffer[i - 1] == ' ' || rl_line_buffer[i - 1] == '\t'))
			words++;
	}
	rl_attempted_completion_over = 1;
	if (words == 0) {
		cand_words = NULL;
		return rl_completion_matches(text, next_candidate);
	}
	sscanf(rl_line_buffer, "%63s", first);
	c = admin_cmd_find(first);
	if (c == NULL || c->max_args == 0)
		return NULL;
	if (words == 1 && c->words != NULL) {
		cand_words = c->words;
		return rl_completion_matches(text, next_candidate);
	}
	rl_attempted_completion_over = 0;
	return NULL;
}
#endif

void admin_console_begin(struct admin_ctx *x)
{
	con = x;
#ifdef CFL_HAVE_LIBEDIT
	editing = isatty(STDIN_FILENO);
	if (editing) {
		rl_readline_name = "cfl";
		rl_attempted_completion_function = complete;
		return;
	}
#endif
	setvbuf(stdin, NULL, _IONBF, 0);
}

void admin_console_ready(struct cfl_admin *s, void *arg)
{
	struct cfl_loop *loop = cfl_admin_loop(s);
	enum admin_next next;

	con = arg;
	con->s = s;
	con->reported = 0; /* the session goes on: a later end is news */
#ifdef CFL_HAVE_LIBEDIT
	if (editing) {
		rl_callback_handler_install(PROMPT, on_edited_line);
		handler_on = 1;
		if (cfl_loop_watch(loop, STDIN_FILENO, CFL_EV_READ, on_stdin, NULL) != 0)
			cfl_admin_quit(s, CFL_EIO, "cannot watch the terminal");
		return;
	}
#endif
	prompt();
	if (cfl_loop_watch(loop, STDIN_FILENO, CFL_EV_READ, on_stdin, NULL) == 0)
		return;
	/* epoll refuses regular files and /dev/null; reading them never blocks. */
	while ((next = plain_line()) == ADMIN_AGAIN)
		prompt();
	if (next == ADMIN_QUIT)
		cfl_admin_quit(s, 0, NULL);
}

void admin_console_end(void)
{
#ifdef CFL_HAVE_LIBEDIT
	if (handler_on) {
		/* The session ended while a line was being typed (SIGINT, the connection). */
		rl_callback_handler_remove();
		handler_on = 0;
		fputc('\n', stdout);
	}
#endif
	fflush(stdout);
}
