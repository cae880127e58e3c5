/* bench_scale's load processes, seen from the parent: forking them, reading their lines, the
 * set-up and the logins of every site. */
#define _GNU_SOURCE
#include "scale.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

void start_loaders(void)
{
	pid_t parent = getpid();

	B.n_load = (B.n + LOAD_MAX - 1) / LOAD_MAX;
	for (int k = 0; k < B.n_load; k++) {
		struct loader *l = &B.ld[k];
		int first = 1 + k * B.n / B.n_load, next = 1 + (k + 1) * B.n / B.n_load;
		int ctl[2], st[2];
		char logf[PATH_MAX];

		if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(st, O_CLOEXEC) != 0)
			die("pipe: %s", strerror(errno));
		fflush(NULL);
		if ((l->pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (l->pid == 0) {
			signal(SIGINT, SIG_IGN); /* the parent stops us */
			signal(SIGTERM, SIG_DFL);
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
				_exit(1);
			for (int j = 0; j < k; j++)
				close(B.ld[j].ctl), close(B.ld[j].st);
			close(ctl[1]);
			close(st[0]);
			snprintf(logf, sizeof(logf), "%s/load-%d.log", B.run, k + 1);
			if (freopen(logf, "w", stderr) == NULL)
				_exit(1);
			_exit(load_main(prod_of, B.run, first, next - first, B.fed_port, ctl[0],
			                st[1]));
		}
		close(ctl[0]);
		close(st[1]);
		l->ctl = ctl[1];
		l->st = st[0];
		(void)fcntl(l->st, F_SETFL, O_NONBLOCK);
	}
}

static void note_event(int k, const char *line)
{
	if (B.n_events < EVENTS_MAX)
		snprintf(B.events[B.n_events], sizeof(B.events[0]), "load %d: %s", k + 1, line);
	B.n_events++;
}

static void parse_line(int k, char *line)
{
	struct loader *l = &B.ld[k];

	if (sscanf(line, "ready %lf", &l->setup_s) == 1)
		l->ready = 1;
	else if (sscanf(line, "n %d %d %d", &l->in, &l->fails, &l->drops) == 3)
		return;
	else {
		B.errors += strncmp(line, "error", 5) == 0;
		note_event(k, line);
	}
}

static void read_loader(int k)
{
	struct loader *l = &B.ld[k];
	ssize_t r;
	char *nl;

	while ((r = read(l->st, l->buf + l->len, sizeof(l->buf) - 1 - l->len)) > 0) {
		l->len += (size_t)r;
		l->buf[l->len] = '\0';
		while ((nl = strchr(l->buf, '\n')) != NULL) {
			*nl = '\0';
			parse_line(k, l->buf);
			l->len -= (size_t)(nl + 1 - l->buf);
			memmove(l->buf, nl + 1, l->len + 1);
		}
		if (l->len == sizeof(l->buf) - 1)
			l->len = 0; /* a line too long: drop it */
	}
	if (r == 0)
		die("load process %d ended (see %s/load-%d.log)", k + 1, B.run, k + 1);
}

/* Reads what the load processes said, waiting up to `ms` for the first line. */
void drain(int ms)
{
	struct pollfd p[N_MAX / LOAD_MAX];

	if (interrupted)
		die("interrupted");
	for (int k = 0; k < B.n_load; k++)
		p[k] = (struct pollfd){B.ld[k].st, POLLIN, 0};
	if (poll(p, (nfds_t)B.n_load, ms) <= 0)
		return;
	for (int k = 0; k < B.n_load; k++)
		if (p[k].revents != 0)
			read_loader(k);
	if (B.errors > 0)
		die("a load process failed: %s", B.events[0]);
}

void drain_for(double secs)
{
	double end = now_s() + secs;

	while (now_s() < end)
		drain(50);
}

int total(size_t field)
{
	int t = 0;

	for (int k = 0; k < B.n_load; k++)
		t += *(const int *)((const char *)&B.ld[k] + field);
	return t;
}

void wait_ready(void)
{
	double t0 = now_s(), worst = 0;
	int ready;

	do {
		if (now_s() - t0 > SETUP_S)
			die("the load processes did not set their sites up in %.0f s", SETUP_S);
		drain(100);
		ready = 0;
		for (int k = 0; k < B.n_load; k++)
			ready += B.ld[k].ready;
	} while (ready < B.n_load);
	for (int k = 0; k < B.n_load; k++)
		worst = B.ld[k].setup_s > worst ? B.ld[k].setup_s : worst;
	printf("load: %d process%s of up to %d sites, set up in %.2f s (kits, TLS contexts, hubs, "
	       "auth clients, executors)\n",
	       B.n_load, B.n_load > 1 ? "es" : "", LOAD_MAX, worst);
}

/* Logs everyone in: the seconds it took, or -1 when the deadline passed first. */
double login_all(void)
{
	double t0 = now_s(), last = t0, end = t0 + 60 + B.n / 20.0;
	int in;

	for (int k = 0; k < B.n_load; k++)
		if (write(B.ld[k].ctl, "g", 1) != 1)
			die("cannot start load process %d", k + 1);
	while ((in = total(offsetof(struct loader, in))) < B.n) {
		if (now_s() > end)
			return -1;
		if (now_s() - last >= 5) {
			last = now_s();
			fprintf(stderr, "  %6.1f s: %d of %d logged in, %d failed attempts\n",
			        last - t0, in, B.n, total(offsetof(struct loader, fails)));
		}
		drain(50);
	}
	return now_s() - t0;
}
