/* cfl cert request / approve / revoke: keys made where they are used, certificates issued by
 * the workspace's CA against the project file, revocation into state/crl.pem. */
#define _DEFAULT_SOURCE
#include "ca_state.h"
#include "certfile.h"
#include "internal.h"

#include "cfl/log.h"
#include "util/fs.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int join(char *buf, const char *a, const char *b, struct cfl_err *e)
{
	if (cfl__path_join(buf, PATH_MAX, a, b) != 0)
		return cfl_err_set(e, CFL_ETOOBIG, "path too long: '%s/%s'", a, b);
	return 0;
}

/* ---- request ---- */

static int request_json(const struct cfl_cert_request_opts *o, const char *csr, char **out,
                        struct cfl_err *e)
{
	json_t *root = json_pack("{s:s, s:s, s:s, s:s}", "format", CFL__REQUEST_FMT, "name",
	                         o->name, "type", o->type, "csr", csr);
	json_t *hosts = json_array();

	if (root == NULL || hosts == NULL) {
		json_decref(root);
		json_decref(hosts);
		return cfl_err_set(e, CFL_ENOMEM, "out of memory");
	}
	if (o->org != NULL)
		json_object_set_new(root, "org", json_string(o->org));
	if (o->role != NULL)
		json_object_set_new(root, "role", json_string(o->role));
	for (size_t i = 0; i < o->n_hosts; i++)
		json_array_append_new(hosts, json_string(o->hosts[i]));
	if (o->n_hosts > 0)
		json_object_set_new(root, "host_names", hosts);
	else
		json_decref(hosts);
	*out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	return *out != NULL ? 0 : cfl_err_set(e, CFL_ENOMEM, "out of memory");
}

static int request_key(const struct cfl_cert_request_opts *o, struct cfl_pki_key **key,
                       struct cfl_err *e)
{
	char path[PATH_MAX], file[CFL_CN_MAX + 8];
	int rc;

	if (o->key_path != NULL)
		return cfl_pki_key_load(o->key_path, key, e);
	snprintf(file, sizeof(file), "%s.key", o->name);
	if ((rc = join(path, o->dir, file, e)) != 0)
		return rc;
	if (cfl__fs_exists(path))
		return cfl_err_set(e, CFL_EEXIST,
		                   "'%s' exists: give it with --key to reuse it, or remove it",
		                   path);
	if ((rc = cfl_pki_key_generate(o->key_type, key, e)) != 0)
		return rc;
	return cfl_pki_key_save(*key, path, e);
}

int cfl_cert_request(const struct cfl_cert_request_opts *o, char *req_path, size_t size,
                     struct cfl_err *e)
{
	struct cfl_pki_cert_req req = {0};
	struct cfl_pki_key *key = NULL;
	char path[PATH_MAX], file[CFL_CN_MAX + 16], *csr = NULL, *text = NULL;
	enum cfl_ptype type;
	size_t len = 0;
	int rc;

	if (o == NULL || o->name == NULL || o->dir == NULL ||
	    cfl_cert_type_parse(o->type, &type) != 0)
		return cfl_err_set(e, CFL_EINVAL,
		                   "a request needs a name, a type (client, admin "
		                   "or server) and a folder");
	if (strlen(o->name) == 0 || strlen(o->name) > CFL_CN_MAX || strchr(o->name, '/') != NULL ||
	    o->name[0] == '.')
		return cfl_err_set(e, CFL_EINVAL, "name '%s' is not a participant name", o->name);
	if ((rc = cfl__fs_mkdirs(o->dir, 0700, e)) != 0 || (rc = request_key(o, &key, e)) != 0)
		return rc;
	req.cn = o->name;
	req.org = o->org;
	req.role = o->role;
	snprintf(file, sizeof(file), "%s.request.json", o->name);
	if ((rc = cfl_pki_csr_create(key, &req, &csr, &len, e)) == 0 &&
	    (rc = request_json(o, csr, &text, e)) == 0 && (rc = join(path, o->dir, file, e)) == 0)
		rc = cfl__fs_write_file(path, text, strlen(text), 0644, e);
	if (rc == 0)
		snprintf(req_path, size, "%s", path);
	free(csr);
	free(text);
	cfl_pki_key_free(key);
	return rc;
}

/* ---- approve ---- */

static const struct cfl_participant *find_part(const struct cfl_project *p, const char *name)
{
	for (size_t i = 0; i < p->n_parts; i++) {
		if (strcmp(p->parts[i].name, name) == 0)
			return &p->parts[i];
	}
	return NULL;
}

static int same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int check_field(const char *field, const char *asked, const char *project, struct cfl_err *e)
{
	if (same(asked, project))
		return 0;
	return cfl_err_set(e, CFL_EVERIFY,
	                   "%s differs: the request asks for %s%s%s, the project file says %s%s%s",
	                   field, asked ? "'" : "", asked ? asked : "none", asked ? "'" : "",
	                   project ? "'" : "", project ? project : "none", project ? "'" : "");
}

static int check_hosts(const struct cfl_cert_request *r, const struct cfl_participant *pt,
                       struct cfl_err *e)
{
	int ok = r->n_hosts == pt->n_host_names;

	for (size_t i = 0; ok && i < r->n_hosts; i++)
		ok = strcmp(r->hosts[i], pt->host_names[i]) == 0;
	if (!ok)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "host names differ: the request asks for %zu name(s)%s%s, the "
		                   "project file says %zu%s%s",
		                   r->n_hosts, r->n_hosts ? " starting " : "",
		                   r->n_hosts ? r->hosts[0] : "", pt->n_host_names,
		                   pt->n_host_names ? " starting " : "",
		                   pt->n_host_names ? pt->host_names[0] : "");
	return 0;
}

/* The CSR's subject must say what the request says. */
static int check_csr(const struct cfl_cert_request *r, struct cfl_err *e)
{
	char cn[CFL_CN_MAX + 1] = "", org[CFL_CN_MAX + 1] = "", role[256] = "";
	int has_org = cfl_pki_csr_org(r->csr, org, sizeof(org)) == 0;
	int has_role = cfl_pki_csr_role(r->csr, role, sizeof(role)) == 0;

	if (cfl_pki_csr_cn(r->csr, cn, sizeof(cn)) != 0 || strcmp(cn, r->name) != 0)
		return cfl_err_set(e, CFL_EVERIFY, "the CSR's name '%s' is not the request's '%s'",
		                   cn, r->name);
	if (!same(has_org ? org : NULL, r->org) || !same(has_role ? role : NULL, r->role))
		return cfl_err_set(e, CFL_EVERIFY,
		                   "the CSR's organisation or role is not the request's");
	return 0;
}

int cfl__check_request(const struct cfl_project *p, const struct cfl_cert_request *r,
                       const struct cfl_participant **out, struct cfl_err *e)
{
	const struct cfl_participant *pt = find_part(p, r->name);
	int rc;

	if (pt == NULL)
		return cfl_err_set(e, CFL_EVERIFY, "name differs: no participant '%s' in '%s'",
		                   r->name, p->path);
	if (pt->type != r->type)
		return cfl_err_set(e, CFL_EVERIFY,
		                   "type differs: the request asks for '%s', the project file says "
		                   "'%s'",
		                   cfl_cert_type_name(r->type), cfl_cert_type_name(pt->type));
	if ((rc = check_field("org", r->org, pt->org, e)) != 0 ||
	    (rc = check_field("role", r->role, pt->type == CFL_PT_ADMIN ? pt->role : NULL, e)) !=
	            0 ||
	    (rc = check_hosts(r, pt, e)) != 0 || (rc = check_csr(r, e)) != 0)
		return rc;
	*out = pt;
	return 0;
}

static int load_request(const char *path, struct cfl_cert_request **r, struct cfl_err *e)
{
	char *text = NULL;
	size_t len = 0;
	int rc = cfl__fs_read_file(path, CFL_CERT_FILE_MAX, &text, &len, e);

	if (rc == 0 && (rc = cfl_cert_request_parse(text, len, r, e)) != 0)
		cfl_err_prefix(e, "request '%s'", path);
	free(text);
	return rc;
}

/* Adds kit/rel (a file) to files{} with its mode. */
static int add_file(json_t *files, const char *kit, const char *rel, struct cfl_err *e)
{
	char path[PATH_MAX], *text = NULL;
	struct stat st;
	size_t len = 0;
	int rc;

	if ((rc = join(path, kit, rel, e)) != 0 ||
	    (rc = cfl__fs_read_file(path, CFL_CERT_FILE_MAX, &text, &len, e)) != 0)
		return rc;
	if (stat(path, &st) != 0 || strlen(text) != len)
		rc = cfl_err_set(e, CFL_EIO, "cannot take '%s' into the approval", path);
	else if (json_object_set_new(files, rel,
	                             json_pack("{s:i, s:s%}", "mode",
	                                       (st.st_mode & 0111) ? 0755 : 0644, "text", text,
	                                       len)) != 0)
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	free(text);
	return rc;
}

static int add_dir(json_t *files, const char *kit, const char *sub, struct cfl_err *e)
{
	char dir[PATH_MAX], rel[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = join(dir, kit, sub, e);

	if (rc != 0 || (d = opendir(dir)) == NULL)
		return rc != 0 ? rc : cfl_err_set(e, CFL_EIO, "cannot read '%s'", dir);
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((rc = join(rel, sub, de->d_name, e)) == 0)
			rc = add_file(files, kit, rel, e);
	}
	closedir(d);
	return rc;
}

/* The approval of the kit in `kit` (no private key in it), signed by the issuing CA. */
static int write_approval(const struct cfl_project *p, const struct cfl_participant *pt,
                          const struct cfl__ca *ca, const char *kit, const char *out,
                          struct cfl_err *e)
{
	json_t *root =
	        json_pack("{s:s, s:s, s:s, s:s, s:{}}", "format", CFL__APPROVAL_FMT, "project",
	                  p->name, "name", pt->name, "type", cfl_cert_type_name(pt->type), "files");
	char *canon = NULL, *b64 = NULL, *text = NULL;
	uint8_t *sig = NULL;
	size_t len = 0, sig_len = 0;
	int rc = root == NULL ? cfl_err_set(e, CFL_ENOMEM, "out of memory") : 0;

	if (rc == 0 && (rc = add_dir(json_object_get(root, "files"), kit, "startup", e)) == 0)
		rc = add_dir(json_object_get(root, "files"), kit, "local", e);
	if (rc == 0 && (rc = cfl__approval_canonical(root, &canon, &len, e)) == 0)
		rc = cfl_pki_sign(ca->key, canon, len, &sig, &sig_len, e);
	if (rc == 0 && (cfl_base64_encode(sig, sig_len, &b64) != 0 ||
	                json_object_set_new(root, "signature", json_string(b64)) != 0 ||
	                (text = json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS)) == NULL))
		rc = cfl_err_set(e, CFL_ENOMEM, "out of memory");
	if (rc == 0)
		rc = cfl__fs_write_file(out, text, strlen(text), 0644, e);
	free(canon);
	free(b64);
	free(text);
	free(sig);
	json_decref(root);
	return rc;
}

struct approve {
	struct cfl_project *proj;
	struct cfl_cert_request *req;
	struct cfl__ca ca;
	struct cfl_pki_key *pub;
	struct cfl_pki_cert *issued;
	char state[PATH_MAX], tmp[PATH_MAX];
};

static int approve_prepare(struct approve *a, const char *project, const char *workspace,
                           const char *request, struct cfl_err *e)
{
	char proj_dir[PATH_MAX];
	int rc;

	if ((rc = cfl_project_load(project, &a->proj, e)) != 0 ||
	    (rc = load_request(request, &a->req, e)) != 0)
		return rc;
	if ((rc = join(proj_dir, workspace, a->proj->name, e)) != 0 ||
	    (rc = join(a->state, proj_dir, "state", e)) != 0)
		return rc;
	if ((rc = cfl__ca_open(a->state, &a->ca, e)) != 0)
		return rc == CFL_ENOENT
		               ? cfl_err_set(e, CFL_ENOENT,
		                             "no CA in '%s': run cfl provision -p %s -w %s first",
		                             a->state, project, workspace)
		               : rc;
	if ((rc = cfl_pki_csr_public_key(a->req->csr, &a->pub, e)) != 0)
		return rc;
	if ((rc = join(a->tmp, proj_dir, ".approve.XXXXXX", e)) != 0)
		return rc;
	if (mkdtemp(a->tmp) == NULL) {
		a->tmp[0] = '\0';
		return cfl_err_set(e, CFL_EIO, "cannot create a folder in '%s': %s", proj_dir,
		                   strerror(errno));
	}
	return 0;
}

int cfl_cert_approve(const char *project, const char *workspace, const char *request, int days,
                     const char *out, const char *cfl_path, char *fp, struct cfl_err *e)
{
	struct approve a = {0};
	struct cfl__kit_spec s = {0};
	const struct cfl_participant *pt = NULL;
	int rc = approve_prepare(&a, project, workspace, request, e);

	if (rc == 0 && (rc = cfl__check_request(a.proj, a.req, &pt, e)) != 0)
		cfl_err_prefix(e, "request '%s' refused", request);
	if (rc == 0) {
		s.kit_dir = a.tmp;
		s.root_fd = -1;
		s.proj = a.proj;
		s.pt = pt;
		s.ca = &a.ca;
		s.subject = a.pub;
		s.days = days;
		s.cfl_path = cfl_path;
		rc = cfl__kit_build(&s, &a.issued, e);
	}
	if (rc == 0)
		rc = write_approval(a.proj, pt, &a.ca, a.tmp, out, e);
	if (rc == 0)
		rc = cfl__ca_record(a.state, pt->name, a.issued, e);
	if (rc == 0)
		rc = cfl_pki_cert_fingerprint(a.ca.anchor, fp, CFL_PKI_FINGERPRINT_MAX);
	if (a.tmp[0] != '\0')
		cfl__fs_rmtree(a.tmp);
	cfl_pki_cert_free(a.issued);
	cfl_pki_key_free(a.pub);
	cfl__ca_release(&a.ca);
	cfl_cert_request_free(a.req);
	cfl_project_free(a.proj);
	return rc;
}

/* ---- revoke ---- */

int cfl_cert_revoke(const char *project, const char *workspace, const char *name,
                    const char *reason, int *n_revoked, char *crl_path, size_t size,
                    struct cfl_err *e)
{
	char proj_dir[PATH_MAX], state[PATH_MAX];
	struct cfl_project *p = NULL;
	struct cfl__ca ca = {0};
	int rc, code = -1;

	if (reason != NULL && cfl_pki_crl_reason_parse(reason, &code) != 0)
		return cfl_err_set(e, CFL_EINVAL,
		                   "unknown reason '%s' (keyCompromise, affiliationChanged, "
		                   "superseded, cessationOfOperation, privilegeWithdrawn, ...)",
		                   reason);
	if ((rc = cfl_project_load(project, &p, e)) != 0)
		return rc;
	if (find_part(p, name) == NULL)
		rc = cfl_err_set(e, CFL_ENOENT, "no participant '%s' in '%s'", name, project);
	if (rc == 0 && (rc = join(proj_dir, workspace, p->name, e)) == 0 &&
	    (rc = join(state, proj_dir, "state", e)) == 0 &&
	    (rc = cfl__ca_open(state, &ca, e)) == 0 &&
	    (rc = cfl__ca_revoke(state, &ca, name, code, n_revoked, e)) == 0)
		rc = join(crl_path, state, "crl.pem", e) == 0 && strlen(crl_path) < size ? 0 : rc;
	cfl__ca_release(&ca);
	cfl_project_free(p);
	return rc;
}
