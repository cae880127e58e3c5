/* bench_transport: loopback sockets, the provisioned kits, their TLS contexts and the
 * baselines' blocking byte pipes (plain TCP or a minimal OpenSSL TLS 1.3 session). */
#define _GNU_SOURCE
#include "transport.h"

#include "cfl/err.h"
#include "cfl/provision.h"
#include "util/fs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

struct cfl_kitcfg kit_srv, kit_cli;
struct cfl_tls_ctx *srv_tls, *cli_tls;

/* Blocking-socket deadlines and no Nagle delay (cfl sets TCP_NODELAY on its sockets too). */
void tune(int fd)
{
	struct timeval tv = {WAIT_MS / 1000, 0};
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	return a;
}

/* A listening socket on an ephemeral loopback port, stored in *port. */
int tcp_listen(int *port)
{
	struct sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		bt_die("cannot listen on %s: %s", LOOPBACK, strerror(errno));
	*port = ntohs(a.sin_port);
	return fd;
}

int tcp_connect(int port)
{
	struct sockaddr_in a = loopback(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		bt_die("cannot connect to %s:%d: %s", LOOPBACK, port, strerror(errno));
	tune(fd);
	return fd;
}

/* The kits name ports, unused: the server process listens on a port the kernel picks and tells
 * it (a port picked here and closed could be taken by another process before the server binds
 * it). */
static void write_project(const char *path)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL)
		bt_die("cannot write '%s': %s", path, strerror(errno));
	fputs("api_version: 3\nname: bench\nconnection_security: mtls\nparticipants:\n"
	      "  - {name: localhost, type: server, org: bench, fed_learn_port: 8002,\n"
	      "     admin_port: 8003, host_names: [localhost, 127.0.0.1]}\n"
	      "  - {name: site-1, type: client, org: bench}\n",
	      f);
	if (fclose(f) != 0)
		bt_die("cannot write '%s'", path);
}

static struct cfl_tls_ctx *kit_tls(const char *prod, const char *name, struct cfl_kitcfg *k,
                                   int server)
{
	struct cfl_tls_config cfg = {server, CFL_SEC_MTLS, k->cert, k->key, k->root_ca, NULL, NULL};
	struct cfl_tls_ctx *ctx = NULL;
	char dir[PATH_MAX];
	struct cfl_err e;

	cfl_err_clear(&e);
	if (cfl__path_join(dir, sizeof(dir), prod, name) != 0 ||
	    cfl_kitcfg_load(dir, server, k, &e) != 0)
		bt_die("cannot load the kit of '%s': %s", name, e.msg);
	if (k->mode != CFL_SEC_MTLS)
		bt_die("the kit of '%s' is not in mtls mode", name);
	if (!server)
		cfg.ca_file = cfl_kitcfg_trust_file(k);
	if (cfl_tls_ctx_new(&cfg, &ctx, &e) != 0)
		bt_die("tls context of '%s': %s", name, e.msg);
	return ctx;
}

void make_kits(void)
{
	char project[PATH_MAX], ws[PATH_MAX], prod[PATH_MAX];
	struct cfl_provision_opts o = {project, ws, -1, NULL};
	struct cfl_err e;

	const char *tmp = bt_tmp_make("/tmp/cfl-bench-transport.XXXXXX");

	if (cfl__path_join(project, sizeof(project), tmp, "project.yml") != 0 ||
	    cfl__path_join(ws, sizeof(ws), tmp, "workspace") != 0)
		bt_die("temporary path too long");
	write_project(project);
	cfl_err_clear(&e);
	if (cfl_provision(&o, prod, sizeof(prod), &e) != 0)
		bt_die("cannot provision: %s", e.msg);
	srv_tls = kit_tls(prod, "localhost", &kit_srv, 1);
	cli_tls = kit_tls(prod, "site-1", &kit_cli, 0);
}

/* The baseline's TLS: the same kit files, TLS 1.3 only, the peer verified, as cfl does. */
void ossl_open(struct io *p, int server)
{
	const struct cfl_kitcfg *k = server ? &kit_srv : &kit_cli;
	SSL_CTX *x = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if ((p->ctx = x) == NULL || SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(x, BASE_SUITE) != 1 ||
	    SSL_CTX_use_certificate_chain_file(x, k->cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(x, k->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(x, k->root_ca, NULL) != 1)
		bt_die("openssl baseline: cannot set up the context: %s",
		       ERR_reason_error_string(ERR_get_error()));
	SSL_CTX_set_verify(x, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	                   NULL);
	if ((p->ssl = SSL_new(x)) == NULL || SSL_set_fd(p->ssl, p->fd) != 1 ||
	    (!server && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl), LOOPBACK) != 1))
		bt_die("openssl baseline: cannot make a session");
	if ((server ? SSL_accept(p->ssl) : SSL_connect(p->ssl)) != 1)
		bt_die("openssl baseline: handshake failed: %s",
		       ERR_reason_error_string(ERR_get_error()));
}

void io_write(struct io *p, const uint8_t *buf, size_t len)
{
	ssize_t r;
	size_t n;

	for (; len > 0; buf += n, len -= n) {
		if (p->ssl != NULL) {
			if (SSL_write_ex(p->ssl, buf, len, &n) != 1)
				bt_die("SSL_write failed: %s", strerror(errno));
		} else {
			if ((r = send(p->fd, buf, len, MSG_NOSIGNAL)) <= 0)
				bt_die("send: %s", strerror(errno));
			n = (size_t)r;
		}
	}
}

/* Reads what has arrived, at most `len` bytes; 0 at the end of the stream. */
size_t io_read(struct io *p, uint8_t *buf, size_t len)
{
	ssize_t r;
	size_t n = 0;
	int err;

	if (p->ssl == NULL) {
		if ((r = recv(p->fd, buf, len, 0)) < 0)
			bt_die("recv: %s", strerror(errno));
		return (size_t)r;
	}
	errno = 0;
	if (SSL_read_ex(p->ssl, buf, len, &n) == 1)
		return n;
	err = SSL_get_error(p->ssl, 0);
	if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0))
		return 0;
	bt_die("SSL_read failed (SSL error %d): %s", err, strerror(errno));
}

void io_read_full(struct io *p, uint8_t *buf, size_t len)
{
	size_t n;

	for (; len > 0; buf += n, len -= n)
		if ((n = io_read(p, buf, len)) == 0)
			bt_die("peer closed the connection early");
}

void io_close(struct io *p)
{
	if (p->ssl != NULL)
		(void)SSL_shutdown(p->ssl);
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
	close(p->fd);
}
