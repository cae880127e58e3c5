/* The kit configs NVFlare users recognise: fed_server.json, fed_client.json, fed_admin.json.
 * Field names follow NVFlare's (SPEC §2); cfl's own additions are documented in
 * docs/provisioning.md. */
#include "internal.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* host:port, with an IPv6 literal in brackets (RFC 3986). */
static void format_target(char *buf, size_t size, const char *host, int port)
{
	if (strchr(host, ':') != NULL)
		snprintf(buf, size, "[%s]:%d", host, port);
	else
		snprintf(buf, size, "%s:%d", host, port);
}

static json_t *host_list(const struct cfl_project *p, const struct cfl_participant *srv)
{
	json_t *a = json_array();

	json_array_append_new(a, json_string(cfl_project_default_host(p)));
	for (size_t i = 0; i < srv->n_host_names; i++) {
		if (strcmp(srv->host_names[i], cfl_project_default_host(p)) != 0)
			json_array_append_new(a, json_string(srv->host_names[i]));
	}
	return a;
}

static json_t *server_config(const struct cfl_project *p, const struct cfl_participant *pt,
                             int has_custom_ca)
{
	char cn[CFL_CN_MAX + 1], target[CFL_HOSTNAME_MAX + 8];
	json_t *srv, *root;

	cfl_project_server_cn(p, cn, sizeof(cn));
	snprintf(target, sizeof(target), "%s:%d", pt->name, pt->fed_learn_port);
	srv = json_pack("{s:s, s:s, s:{s:s, s:s}, s:i, s:i, s:s, s:s, s:s, s:s, s:o, s:i, s:i}",
	                "name", p->name, "identity", cn, "service", "target", target, "scheme",
	                "tcp", "fed_learn_port", pt->fed_learn_port, "admin_port", pt->admin_port,
	                "ssl_private_key", "server.key", "ssl_cert", "server.crt", "ssl_root_cert",
	                "rootCA.pem", "connection_security",
	                cfl_conn_sec_name(cfl_project_conn_sec(p, pt)), "host_names",
	                host_list(p, pt), "heart_beat_timeout", 60, "max_num_clients", 1000);
	if (srv != NULL && has_custom_ca)
		json_object_set_new(srv, "custom_ca_cert", json_string("customRootCA.pem"));
	root = json_pack("{s:i, s:s, s:[o], s:b}", "format_version", 2, "project_name", p->name,
	                 "servers", srv, "secure_train", 1);
	return root;
}

static json_t *client_config(const struct cfl_project *p, const struct cfl_participant *pt,
                             int has_custom_ca)
{
	char cn[CFL_CN_MAX + 1], target[CFL_HOSTNAME_MAX + 8];
	json_t *cl;

	cfl_project_server_cn(p, cn, sizeof(cn));
	format_target(target, sizeof(target), cfl_project_target_host(p, pt),
	              cfl_project_target_port(p, pt));
	cl = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", pt->name, "org", pt->org,
	               "ssl_private_key", "client.key", "ssl_cert", "client.crt", "ssl_root_cert",
	               "rootCA.pem", "connection_security",
	               cfl_conn_sec_name(cfl_project_conn_sec(p, pt)));
	if (cl != NULL && has_custom_ca)
		json_object_set_new(cl, "custom_ca_cert", json_string("customRootCA.pem"));
	return json_pack("{s:i, s:s, s:[{s:s, s:s, s:{s:s, s:s}}], s:o, s:b}", "format_version", 2,
	                 "project_name", p->name, "servers", "name", p->name, "identity", cn,
	                 "service", "target", target, "scheme", "tcp", "client", cl, "secure_train",
	                 1);
}

static json_t *admin_config(const struct cfl_project *p, const struct cfl_participant *pt,
                            int has_custom_ca)
{
	char cn[CFL_CN_MAX + 1];
	json_t *adm;

	cfl_project_server_cn(p, cn, sizeof(cn));
	adm = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	                "project_name", p->name, "server_identity", cn, "host",
	                cfl_project_target_host(p, pt), "port", cfl_project_target_port(p, pt),
	                "connection_security", cfl_conn_sec_name(cfl_project_conn_sec(p, pt)),
	                "client_cert", "client.crt", "client_key", "client.key", "ca_cert",
	                "rootCA.pem", "username", pt->name, "role", pt->role, "upload_dir",
	                "transfer", "download_dir", "transfer");
	if (adm != NULL && has_custom_ca)
		json_object_set_new(adm, "custom_ca_cert", json_string("customRootCA.pem"));
	return json_pack("{s:i, s:o, s:b}", "format_version", 1, "admin", adm, "secure_train", 1);
}

int cfl__kit_add_config(struct cfl__kit_mem *m, const struct cfl_project *p,
                        const struct cfl_participant *pt, int has_custom_ca, struct cfl_err *e)
{
	static const char *const names[] = {"startup/fed_server.json", "startup/fed_client.json",
	                                    "startup/fed_admin.json"};
	char *text = NULL;
	json_t *cfg;

	switch (pt->type) {
	case CFL_PT_SERVER:
		cfg = server_config(p, pt, has_custom_ca);
		break;
	case CFL_PT_CLIENT:
		cfg = client_config(p, pt, has_custom_ca);
		break;
	case CFL_PT_ADMIN:
		cfg = admin_config(p, pt, has_custom_ca);
		break;
	default:
		return cfl_err_set(e, CFL_EINVAL, "unknown participant type");
	}
	if (cfg != NULL)
		text = json_dumps(cfg, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(cfg);
	if (text == NULL)
		return cfl_err_set(e, CFL_ENOMEM, "cannot build the config of '%s'", pt->name);
	return cfl__kit_mem_add(m, names[pt->type], text, strlen(text), 0644, text, e);
}
