/* cfl provision: project file → WORKSPACE/<project>/prod_NN, atomically.
 *
 * Everything is written under WORKSPACE/<project>/.prod_tmp.XXXXXX and renamed to prod_NN at
 * the end (rename(2) within one file system), so a failed run leaves nothing behind and a
 * reader never sees half a kit. The CA lives in WORKSPACE/<project>/state/ (ca_state.h) and is
 * reused by later runs, so adding a site does not invalidate the kits already handed out. */
#define _GNU_SOURCE
#include "cfl/provision.h"

#include "cfl/kit.h"
#include "cfl/log.h"
#include "cfl/project.h"
#include "ca_state.h"
#include "internal.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CA_MAX_BYTES (64u << 10)

/* One run's state; released by run_release. */
struct run {
	const struct cfl_provision_opts *opts;
	const struct cfl_provision_ca *ent; /* NULL: cfl's own CA */
	struct cfl_project *proj;
	char proj_dir[PATH_MAX];
	char tmp_dir[PATH_MAX];
	int made_ws, made_proj, new_state;
	struct cfl__ca ca;
	struct cfl_pki_key **keys;   /* one per participant, generated up front */
	struct cfl_pki_cert **certs; /* what each was issued, recorded after publishing */
};

static int join(char *buf, const char *a, const char *b, struct cfl_err *e)
{
	if (cfl__path_join(buf, PATH_MAX, a, b) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s/%s'", a, b);
	return 0;
}

/* Every custom CA named by the project must be a readable PEM certificate before anything is
 * written. */
static int check_custom_cas(const struct cfl_project *p, struct cfl_err *e)
{
	for (size_t i = 0; i < p->n_parts; i++) {
		const char *path = cfl_project_custom_ca(p, &p->parts[i]);
		struct cfl_pki_cert *c = NULL;

		if (path == NULL)
			continue;
		if (cfl_pki_cert_load(path, &c, e) != 0)
			return cfl_err_prefix(e, "%s: participant '%s': custom_ca_cert", p->path,
			                      p->parts[i].name);
		cfl_pki_cert_free(c);
	}
	return 0;
}

static int make_dir(const char *path, int *made, struct cfl_err *e)
{
	*made = 0;
	if (mkdir(path, 0755) == 0) {
		*made = 1;
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	if (errno == ENOENT) {
		/* A workspace given as a/b/c: create the parents; they stay (harmless). */
		int rc = cfl__fs_mkdirs(path, 0755, e);

		*made = rc == 0;
		return rc;
	}
	return cfl_err_set(e, CFL_EIO, "cannot create directory '%s': %s", path, strerror(errno));
}

/* An enterprise CA given again for a workspace that has one must be the same CA. */
static int check_same_ca(struct run *r, const char *state, struct cfl_err *e)
{
	struct cfl_pki_cert **given = NULL;
	size_t n = 0;
	int rc, same;

	if (r->ent == NULL)
		return 0;
	if ((rc = cfl_pki_certs_load(r->ent->ca_cert, &given, &n, e)) != 0)
		return rc;
	same = cfl_pki_cert_equal(given[0], r->ca.cert);
	cfl_pki_certs_free(given, n);
	if (!same)
		return cfl_err_set(
		        e, CFL_ECONFIG,
		        "'%s' already has another CA: --ca-cert '%s' is not its issuing CA "
		        "(use a new workspace)",
		        state, r->ent->ca_cert);
	return 0;
}

/* Loads the workspace's CA from state/ when present, else makes one (or imports the
 * enterprise CA) under tmp/.state, published with the kits. */
static int load_or_create_ca(struct run *r, struct cfl_err *e)
{
	char state[PATH_MAX];
	int rc;

	if ((rc = join(state, r->proj_dir, "state", e)) != 0)
		return rc;
	rc = cfl__ca_open(state, &r->ca, e);
	if (rc == 0) {
		CFL_INFO("reusing the CA in '%s'", state);
		return check_same_ca(r, state, e);
	}
	if (rc != CFL_ENOENT)
		return rc;
	if ((rc = join(state, r->tmp_dir, ".state", e)) != 0)
		return rc;
	if (mkdir(state, 0700) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot create '%s': %s", state, strerror(errno));
	if (r->ent != NULL)
		rc = cfl__ca_import(state, r->ent->ca_cert, r->ent->ca_key, r->ent->ca_chain,
		                    &r->ca, e);
	else
		rc = cfl__ca_create(state, r->proj->name, cfl_project_cert_days(r->proj),
		                    r->proj->key_type, &r->ca, e);
	if (rc == 0)
		r->new_state = 1;
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

/* The certificate (leaf + issuing chain), the key when it is a private one, the anchor. */
static int write_credentials(const struct cfl__kit_spec *s, const char *startup,
                             struct cfl_pki_cert **issued, struct cfl_err *e)
{
	const char *base = s->pt->type == CFL_PT_SERVER ? "server" : "client";
	char path[PATH_MAX], name[32], *pem = NULL;
	size_t len = 0;
	int rc;

	rc = cfl__issue_for(s->proj, s->pt, s->ca, s->subject, s->days, issued, e);
	snprintf(name, sizeof(name), "%s.key", base);
	if (rc == 0 && s->save_key && (rc = join(path, startup, name, e)) == 0)
		rc = cfl_pki_key_save(s->subject, path, e);
	snprintf(name, sizeof(name), "%s.crt", base);
	if (rc == 0 && (rc = join(path, startup, name, e)) == 0 &&
	    (rc = cfl__ca_leaf_pem(s->ca, *issued, &pem, &len, e)) == 0)
		rc = cfl__fs_write_file(path, pem, len, 0644, e);
	if (rc == 0 && (rc = join(path, startup, "rootCA.pem", e)) == 0)
		rc = cfl_pki_cert_save(s->ca->anchor, path, e);
	free(pem);
	return rc;
}

int cfl__kit_dir(char *buf, const char *root, const char *name, struct cfl_err *e)
{
	struct stat st;

	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strchr(name, '/') != NULL)
		return cfl_err_set(e, CFL_ECONFIG,
		                   "the kit folder '%s' would not be a folder inside '%s'", name,
		                   root);
	if (join(buf, root, name, e) != 0)
		return CFL_ETOOBIG;
	/* The output folder is new (mkdtemp): anything already there was not made by this run. */
	if (lstat(buf, &st) == 0 || errno != ENOENT)
		return cfl_err_set(e, CFL_ECONFIG, "the kit folder '%s' already exists", buf);
	return 0;
}

/* Every kit folder is checked before the first one is written. */
static int check_kit_dirs(struct run *r, struct cfl_err *e)
{
	char kit[PATH_MAX];

	for (size_t i = 0; i < r->proj->n_parts; i++) {
		int rc = cfl__kit_dir(kit, r->tmp_dir, r->proj->parts[i].name, e);

		if (rc != 0)
			return cfl_err_prefix(e, "participant '%s'", r->proj->parts[i].name);
	}
	return 0;
}

int cfl__kit_build(const struct cfl__kit_spec *s, struct cfl_pki_cert **issued, struct cfl_err *e)
{
	char startup[PATH_MAX], local[PATH_MAX], transfer[PATH_MAX], path[PATH_MAX];
	const char *ca = cfl_project_custom_ca(s->proj, s->pt);
	int rc;

	if ((rc = join(startup, s->kit_dir, "startup", e)) != 0 ||
	    (rc = join(local, s->kit_dir, "local", e)) != 0 ||
	    (rc = join(transfer, s->kit_dir, "transfer", e)) != 0)
		return rc;
	if ((rc = cfl__fs_mkdirs(startup, 0755, e)) != 0 ||
	    (rc = cfl__fs_mkdirs(local, 0755, e)) != 0 ||
	    (rc = cfl__fs_mkdirs(transfer, 0755, e)) != 0)
		return rc;
	if ((rc = write_credentials(s, startup, issued, e)) != 0)
		return rc;
	if (ca != NULL && ((rc = join(path, startup, "customRootCA.pem", e)) != 0 ||
	                   (rc = cfl__fs_copy_file(ca, path, CA_MAX_BYTES, 0644, e)) != 0))
		return rc;
	if ((rc = cfl__kit_write_config(startup, s->proj, s->pt, ca != NULL, e)) != 0 ||
	    (rc = cfl__kit_write_scripts(startup, s->pt, s->cfl_path, e)) != 0 ||
	    (rc = cfl__kit_write_local(local, s->pt, e)) != 0)
		return rc;
	return cfl_kit_sign(s->kit_dir, s->ca->key, e);
}

static int build_kit(struct run *r, size_t idx, struct cfl_err *e)
{
	struct cfl__kit_spec s = {.proj = r->proj,
	                          .pt = &r->proj->parts[idx],
	                          .ca = &r->ca,
	                          .subject = r->keys[idx],
	                          .save_key = 1,
	                          .cfl_path = r->opts->cfl_path};
	char kit[PATH_MAX];
	int rc;

	if ((rc = cfl__kit_dir(kit, r->tmp_dir, s.pt->name, e)) != 0)
		return rc;
	s.kit_dir = kit;
	return cfl__kit_build(&s, &r->certs[idx], e);
}

/* Every certificate issued is recorded in state/certs.json (for cfl cert revoke). */
static int record_all(struct run *r, struct cfl_err *e)
{
	char state[PATH_MAX];
	int rc = join(state, r->proj_dir, "state", e);

	for (size_t i = 0; rc == 0 && i < r->proj->n_parts; i++)
		rc = cfl__ca_record(state, r->proj->parts[i].name, r->certs[i], e);
	return rc;
}

/* The highest prod_NN in the project folder, or -1. */
static int last_prod(const char *proj_dir)
{
	struct dirent *de;
	DIR *d = opendir(proj_dir);
	int max = -1;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long n;

		if (strncmp(de->d_name, "prod_", 5) != 0 || de->d_name[5] == '\0')
			continue;
		errno = 0;
		n = strtol(de->d_name + 5, &end, 10);
		if (errno == 0 && *end == '\0' && n >= 0 && n < 100000 && n > max)
			max = (int)n;
	}
	closedir(d);
	return max;
}

/* Renames the finished temp folder to the next prod_NN; never replaces an existing one. */
static int publish(struct run *r, char *out, size_t out_size, struct cfl_err *e)
{
	char state_tmp[PATH_MAX], state[PATH_MAX], name[24], dst[PATH_MAX];
	int rc, nn = last_prod(r->proj_dir) + 1;

	if ((rc = join(state_tmp, r->tmp_dir, ".state", e)) != 0 ||
	    (rc = join(state, r->proj_dir, "state", e)) != 0)
		return rc;
	if (r->new_state && renameat2(AT_FDCWD, state_tmp, AT_FDCWD, state, RENAME_NOREPLACE) != 0)
		return cfl_err_set(e, CFL_EIO, "cannot create '%s': %s", state, strerror(errno));
	for (int tries = 0; tries < 100; tries++, nn++) {
		snprintf(name, sizeof(name), "prod_%02d", nn);
		if ((rc = join(dst, r->proj_dir, name, e)) != 0)
			break;
		if (renameat2(AT_FDCWD, r->tmp_dir, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) {
			snprintf(out, out_size, "%s", dst);
			return 0;
		}
		if (errno != EEXIST && errno != ENOTEMPTY) {
			rc = cfl_err_set(e, CFL_EIO, "cannot create '%s': %s", dst,
			                 strerror(errno));
			break;
		}
	}
	if (rc == 0)
		rc = cfl_err_set(e, CFL_EEXIST, "no free prod_NN folder in '%s'", r->proj_dir);
	if (r->new_state)
		cfl__fs_rmtree(state);
	return rc;
}

static void run_release(struct run *r, int failed)
{
	if (r->tmp_dir[0] != '\0')
		cfl__fs_rmtree(r->tmp_dir);
	if (failed && r->made_proj)
		rmdir(r->proj_dir);
	if (failed && r->made_ws)
		rmdir(r->opts->workspace);
	cfl__ca_release(&r->ca);
	for (size_t i = 0; r->keys != NULL && i < r->proj->n_parts; i++)
		cfl_pki_key_free(r->keys[i]);
	for (size_t i = 0; r->certs != NULL && i < r->proj->n_parts; i++)
		cfl_pki_cert_free(r->certs[i]);
	free(r->keys);
	free(r->certs);
	cfl_project_free(r->proj);
}

static int prepare(struct run *r, struct cfl_err *e)
{
	const char *ws = r->opts->workspace;
	char tmpl[PATH_MAX];
	int rc;

	if ((rc = cfl_project_load(r->opts->project_path, &r->proj, e)) != 0)
		return rc;
	if (r->opts->key_type >= 0)
		r->proj->key_type = (enum cfl_key_type)r->opts->key_type;
	if ((rc = check_custom_cas(r->proj, e)) != 0)
		return rc;
	if ((rc = make_dir(ws, &r->made_ws, e)) != 0 ||
	    (rc = join(r->proj_dir, ws, r->proj->name, e)) != 0 ||
	    (rc = make_dir(r->proj_dir, &r->made_proj, e)) != 0 ||
	    (rc = join(tmpl, r->proj_dir, ".prod_tmp.XXXXXX", e)) != 0)
		return rc;
	if (mkdtemp(tmpl) == NULL)
		return cfl_err_set(e, CFL_EIO, "cannot create a folder in '%s': %s", r->proj_dir,
		                   strerror(errno));
	memcpy(r->tmp_dir, tmpl, sizeof(r->tmp_dir));
	chmod(r->tmp_dir, 0755);
	return 0;
}

int cfl_provision(const struct cfl_provision_opts *opts, char *out_dir, size_t out_size,
                  struct cfl_err *e)
{
	return cfl_provision_ca(opts, NULL, out_dir, out_size, e);
}

int cfl_provision_ca(const struct cfl_provision_opts *opts, const struct cfl_provision_ca *ca,
                     char *out_dir, size_t out_size, struct cfl_err *e)
{
	struct run r = {.opts = opts, .ent = ca};
	int rc;

	rc = prepare(&r, e);
	if (rc == 0)
		rc = check_kit_dirs(&r, e);
	if (rc == 0)
		rc = load_or_create_ca(&r, e);
	if (rc == 0) {
		r.keys = calloc(r.proj->n_parts, sizeof(r.keys[0]));
		r.certs = calloc(r.proj->n_parts, sizeof(r.certs[0]));
		rc = r.keys == NULL || r.certs == NULL
		             ? cfl_err_set(e, CFL_ENOMEM, "out of memory")
		             : cfl__keygen_many(r.proj->key_type, r.proj->n_parts, r.keys, e);
	}
	for (size_t i = 0; rc == 0 && i < r.proj->n_parts; i++) {
		rc = build_kit(&r, i, e);
		if (rc != 0)
			cfl_err_prefix(e, "participant '%s'", r.proj->parts[i].name);
	}
	if (rc == 0)
		rc = publish(&r, out_dir, out_size, e);
	if (rc == 0)
		r.tmp_dir[0] = '\0'; /* renamed: nothing to remove */
	if (rc == 0 && record_all(&r, e) != 0)
		CFL_WARN("the kits are in '%s' but their serials were not recorded: %s", out_dir,
		         e->msg);
	run_release(&r, rc != 0);
	return rc;
}
