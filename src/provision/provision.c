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
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One run's state; released by run_release. */
struct run {
	const struct cfl_provision_opts *opts;
	const struct cfl_provision_ca *ent; /* NULL: cfl's own CA */
	struct cfl_project *proj;
	char proj_dir[PATH_MAX];
	char tmp_dir[PATH_MAX];
	int tmp_fd; /* tmp_dir, open: the kits are made relative to it */
	int made_ws, made_proj, new_state;
	struct cfl__ca ca;
	struct cfl__ca_entry *recs; /* what each was issued, recorded after publishing */
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

/* Every kit folder name is checked before the first one is written. The folder is new and
 * empty (mkdtemp): each kit's mkdirat refuses whatever might appear there since. */
static int check_kit_dirs(struct run *r, struct cfl_err *e)
{
	char kit[PATH_MAX];

	for (size_t i = 0; i < r->proj->n_parts; i++) {
		int rc = cfl__kit_dir_name(kit, r->tmp_dir, r->proj->parts[i].name, e);

		if (rc != 0)
			return cfl_err_prefix(e, "participant '%s'", r->proj->parts[i].name);
	}
	return 0;
}

/* Participant idx's key, certificate and kit (one of the parallel loop's items). */
static int build_kit(void *arg, size_t idx, struct cfl_err *e)
{
	struct run *r = arg;
	struct cfl__kit_spec s = {.proj = r->proj,
	                          .pt = &r->proj->parts[idx],
	                          .ca = &r->ca,
	                          .root_fd = r->tmp_fd,
	                          .name = r->proj->parts[idx].name,
	                          .save_key = 1,
	                          .cfl_path = r->opts->cfl_path};
	struct cfl_pki_cert *cert = NULL;
	struct cfl_pki_key *key = NULL;
	char kit[PATH_MAX];
	int rc;

	if ((rc = cfl__kit_dir_name(kit, r->tmp_dir, s.pt->name, e)) == 0 &&
	    (rc = cfl_pki_key_generate(r->proj->key_type, &key, e)) == 0) {
		s.kit_dir = kit;
		s.subject = key;
		rc = cfl__kit_build(&s, &cert, e);
	}
	/* Only its serial and expiry are kept: freed here, on every core, not at the end. */
	if (rc == 0 && cfl__ca_entry_of(cert, &r->recs[idx]) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "cannot read back the certificate issued");
	cfl_pki_cert_free(cert);
	cfl_pki_key_free(key);
	if (rc != 0)
		cfl_err_prefix(e, "participant '%s'", s.pt->name);
	return rc;
}

/* Every certificate issued is recorded in state/certs.json (for cfl cert revoke). */
static int record_all(struct run *r, struct cfl_err *e)
{
	const char **names = calloc(r->proj->n_parts, sizeof(names[0]));
	char state[PATH_MAX];
	int rc = names == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory")
	                       : join(state, r->proj_dir, "state", e);

	for (size_t i = 0; rc == 0 && i < r->proj->n_parts; i++)
		names[i] = r->proj->parts[i].name;
	if (rc == 0)
		rc = cfl__ca_record_many(state, names, r->recs, r->proj->n_parts, e);
	free(names);
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
	if (r->tmp_fd >= 0)
		close(r->tmp_fd);
	if (r->tmp_dir[0] != '\0')
		cfl__fs_rmtree(r->tmp_dir);
	if (failed && r->made_proj)
		rmdir(r->proj_dir);
	if (failed && r->made_ws)
		rmdir(r->opts->workspace);
	cfl__ca_release(&r->ca);
	free(r->recs);
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
	r->tmp_fd = open(r->tmp_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (r->tmp_fd < 0)
		return cfl_err_set(e, CFL_EIO, "cannot open '%s': %s", r->tmp_dir, strerror(errno));
	return 0;
}

/* $CFL_PROVISION_THREADS (benchmarks, or a machine shared with other work), else 0: one
 * thread per core. */
static int threads_wanted(void)
{
	const char *v = getenv("CFL_PROVISION_THREADS");
	long n = v != NULL ? strtol(v, NULL, 10) : 0;

	return n >= 1 && n <= 16 ? (int)n : 0;
}

int cfl_provision(const struct cfl_provision_opts *opts, char *out_dir, size_t out_size,
                  struct cfl_err *e)
{
	return cfl_provision_ca(opts, NULL, out_dir, out_size, e);
}

int cfl_provision_ca(const struct cfl_provision_opts *opts, const struct cfl_provision_ca *ca,
                     char *out_dir, size_t out_size, struct cfl_err *e)
{
	struct run r = {.opts = opts, .ent = ca, .tmp_fd = -1};
	int rc;

	rc = prepare(&r, e);
	if (rc == 0)
		rc = check_kit_dirs(&r, e);
	if (rc == 0)
		rc = load_or_create_ca(&r, e);
	if (rc == 0) {
		r.recs = calloc(r.proj->n_parts, sizeof(r.recs[0]));
		rc = r.recs == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory") : 0;
	}
	json_object_seed(0); /* jansson's hash seed, set before the threads make objects */
	if (rc == 0)
		rc = cfl__parallel(r.proj->n_parts, threads_wanted(), build_kit, &r, e);
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
