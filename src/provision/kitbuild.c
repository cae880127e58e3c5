/* One participant's startup kit: its certificate, configs, scripts and defaults are made in
 * memory, signed from there (no file is read back), then written with one open, write and
 * close each, relative to the kit folder. Used by cfl provision (many kits at once, on every
 * core) and cfl cert approve (one). */
#define _GNU_SOURCE
#include "internal.h"

#include "cfl/digest.h"
#include "cfl/kit.h"
#include "ca_state.h"
#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CA_MAX_BYTES (64u << 10)

int cfl__kit_mem_add(struct cfl__kit_mem *m, const char *name, const void *data, size_t len,
                     unsigned mode, char *owned, struct cfl_err *e)
{
	if (m->n == CFL__KIT_MEM_MAX) {
		free(owned);
		return cfl_err_set(e, CFL_ETOOBIG, "more than %d files in a kit", CFL__KIT_MEM_MAX);
	}
	m->f[m->n] = (struct cfl_kit_file){.name = name, .data = data, .len = len};
	m->mode[m->n] = mode;
	m->wipe[m->n] = 0;
	m->owned[m->n++] = owned;
	return 0;
}

void cfl__kit_mem_release(struct cfl__kit_mem *m)
{
	for (size_t i = 0; i < m->n; i++) {
		if (m->wipe[i] && m->owned[i] != NULL)
			cfl_wipe(m->owned[i], m->f[i].len);
		free(m->owned[i]);
	}
	m->n = 0;
}

/* A new file `rel` under the folder `dfd` (shown as `dir` in messages) holding data, with
 * exactly `mode`. */
static int write_at(int dfd, const char *dir, const char *rel, const void *data, size_t len,
                    mode_t mode, struct cfl_err *e)
{
	int fd = openat(dfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0)
		return cfl_err_set(e, CFL_EIO, "cannot write '%s/%s': %s", dir, rel,
		                   strerror(errno));
	/* The mode exactly, whatever the umask is now (it may change while the process runs). */
	if (fchmod(fd, mode) != 0 || cfl__fs_write_all(fd, data, len) != 0)
		goto fail;
	if (close(fd) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot write '%s/%s': %s", dir, rel,
		                   strerror(errno));
	return 0;
fail:
	cfl_err_set(e, CFL_EIO, "cannot write '%s/%s': %s", dir, rel, strerror(errno));
	close(fd);
	return CFL_EIO;
}

/* The kit folder made and opened: s->name in s->root_fd, which must not exist yet, or the
 * path s->kit_dir, which may be an empty folder made by the caller. */
static int make_kit(const struct cfl__kit_spec *s, int *dfd, struct cfl_err *e)
{
	const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	int root = s->root_fd >= 0 ? s->root_fd : AT_FDCWD;
	const char *rel = s->root_fd >= 0 ? s->name : s->kit_dir;
	int err = mkdirat(root, rel, 0755) == 0 ? 0 : errno;

	if (err == EEXIST && s->root_fd >= 0) /* anything, a link included: not made by us */
		return cfl_err_set(e, CFL_ECONFIG, "the kit folder '%s' already exists",
		                   s->kit_dir);
	if (err != 0 && err != EEXIST)
		return cfl_err_set(e, CFL_EIO, "cannot create directory '%s': %s", s->kit_dir,
		                   strerror(err));
	*dfd = openat(root, rel, flags);
	if (*dfd < 0)
		return cfl_err_set(e, CFL_EIO, "cannot open '%s': %s", s->kit_dir, strerror(errno));
	return 0;
}

/* The kit folder with its three folders, opened into *dfd. */
static int open_kit(const struct cfl__kit_spec *s, int *dfd, struct cfl_err *e)
{
	static const char *const subs[] = {"startup", "local", "transfer"};
	int rc = make_kit(s, dfd, e);

	for (size_t i = 0; rc == 0 && i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (mkdirat(*dfd, subs[i], 0755) != 0)
			rc = cfl_err_set(e, CFL_EIO, "cannot create directory '%s/%s': %s",
			                 s->kit_dir, subs[i], strerror(errno));
	}
	return rc;
}

int cfl__kit_mem_write(const struct cfl__kit_mem *m, const struct cfl__kit_spec *s,
                       struct cfl_err *e)
{
	int dfd = -1, rc;

	rc = open_kit(s, &dfd, e);
	for (size_t i = 0; rc == 0 && i < m->n; i++)
		rc = write_at(dfd, s->kit_dir, m->f[i].name, m->f[i].data, m->f[i].len,
		              (mode_t)m->mode[i], e);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

int cfl__issue_for(const struct cfl_project *p, const struct cfl_participant *pt,
                   const struct cfl__ca *ca, const struct cfl_pki_key *subject, int days,
                   struct cfl_pki_cert **cert, struct cfl_err *e)
{
	const char *sans[CFL_PROJECT_MAX_HOSTS + 1];
	char cn[CFL_CN_MAX + 1];
	struct cfl_pki_cert_req req = {0};

	req.org = pt->org;
	req.days = days > 0 ? days : cfl_project_cert_days(p);
	req.sans = sans;
	if (pt->type == CFL_PT_SERVER) {
		/* default_host (or the name) first, then every other host name. */
		cfl_project_server_cn(p, cn, sizeof(cn));
		req.cn = cn;
		req.usage = CFL_PKI_USAGE_SERVER;
		sans[req.n_sans++] = cfl_project_default_host(p);
		for (size_t i = 0; i < pt->n_host_names; i++) {
			if (strcmp(pt->host_names[i], sans[0]) != 0)
				sans[req.n_sans++] = pt->host_names[i];
		}
	} else {
		req.cn = pt->name;
		req.usage = CFL_PKI_USAGE_CLIENT;
		req.role = pt->role;
		/* An admin's name is an e-mail address, not a DNS name: no SAN for admins. */
		if (pt->type == CFL_PT_CLIENT)
			sans[req.n_sans++] = pt->name;
	}
	return cfl_pki_cert_issue(ca->key, ca->cert, subject, &req, cert, e);
}

int cfl__kit_dir_name(char *buf, const char *root, const char *name, struct cfl_err *e)
{
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strchr(name, '/') != NULL)
		return cfl_err_set(e, CFL_ECONFIG,
		                   "the kit folder '%s' would not be a folder inside '%s'", name,
		                   root);
	if (cfl__path_join(buf, PATH_MAX, root, name) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s/%s'", root, name);
	return 0;
}

int cfl__kit_dir(char *buf, const char *root, const char *name, struct cfl_err *e)
{
	struct stat st;
	int rc = cfl__kit_dir_name(buf, root, name, e);

	if (rc != 0)
		return rc;
	/* The output folder is new (mkdtemp): anything already there was not made by this run. */
	if (lstat(buf, &st) == 0 || errno != ENOENT)
		return cfl_err_set(e, CFL_ECONFIG, "the kit folder '%s' already exists", buf);
	return 0;
}

/* The certificate (leaf + issuing chain) and the anchor; customRootCA.pem when named. */
static int add_credentials(struct cfl__kit_mem *m, const struct cfl__kit_spec *s,
                           struct cfl_pki_cert **issued, struct cfl_err *e)
{
	const char *crt =
	        s->pt->type == CFL_PT_SERVER ? "startup/server.crt" : "startup/client.crt";
	const char *custom = cfl_project_custom_ca(s->proj, s->pt);
	char *pem = NULL;
	size_t len = 0;
	int rc;

	if ((rc = cfl__issue_for(s->proj, s->pt, s->ca, s->subject, s->days, issued, e)) != 0 ||
	    (rc = cfl__ca_leaf_pem(s->ca, *issued, &pem, &len, e)) != 0 ||
	    (rc = cfl__kit_mem_add(m, crt, pem, len, 0644, pem, e)) != 0 ||
	    (rc = cfl__kit_mem_add(m, "startup/rootCA.pem", s->ca->anchor_pem, s->ca->anchor_len,
	                           0644, NULL, e)) != 0 ||
	    custom == NULL)
		return rc;
	if ((rc = cfl__fs_read_file(custom, CA_MAX_BYTES, &pem, &len, e)) != 0)
		return rc;
	return cfl__kit_mem_add(m, "startup/customRootCA.pem", pem, len, 0644, pem, e);
}

/* startup/<base>.key, mode 0600, written last; not part of the signed manifest. */
static int add_key(struct cfl__kit_mem *m, const struct cfl__kit_spec *s, struct cfl_err *e)
{
	const char *rel =
	        s->pt->type == CFL_PT_SERVER ? "startup/server.key" : "startup/client.key";
	char *pem = NULL;
	size_t len = 0;
	int rc = cfl_pki_key_to_pem(s->subject, &pem, &len, e);

	if (rc != 0) {
		cfl_err_prefix(e, "cannot save key '%s/%s'", s->kit_dir, rel);
		return rc;
	}
	if (m->n == CFL__KIT_MEM_MAX) {
		cfl_wipe(pem, len);
		free(pem);
		return cfl_err_set(e, CFL_ETOOBIG, "more than %d files in a kit", CFL__KIT_MEM_MAX);
	}
	cfl__kit_mem_add(m, rel, pem, len, 0600, pem, e);
	m->wipe[m->n - 1] = 1;
	return 0;
}

int cfl__kit_build(const struct cfl__kit_spec *s, struct cfl_pki_cert **issued, struct cfl_err *e)
{
	struct cfl__kit_mem m = {.n = 0};
	char *sig = NULL;
	size_t len = 0;
	int rc;

	if ((rc = add_credentials(&m, s, issued, e)) == 0 &&
	    (rc = cfl__kit_add_config(&m, s->proj, s->pt,
	                              cfl_project_custom_ca(s->proj, s->pt) != NULL, e)) == 0 &&
	    (rc = cfl__kit_add_scripts(&m, s->pt, s->cfl_path, e)) == 0 &&
	    (rc = cfl__kit_add_local(&m, s->pt, e)) == 0 &&
	    (rc = cfl_kit_manifest(m.f, m.n, s->ca->key, &sig, &len, e)) == 0 &&
	    (rc = cfl__kit_mem_add(&m, "startup/signature.json", sig, len, 0644, sig, e)) == 0 &&
	    (!s->save_key || (rc = add_key(&m, s, e)) == 0))
		rc = cfl__kit_mem_write(&m, s, e);
	cfl__kit_mem_release(&m);
	return rc;
}
