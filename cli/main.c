/* maturityctl: the command line, the connection settings (flags, then environment, then the
 * config file) and dispatch to the commands of ctl_cmd.c. */
#include "ctl.h"

#include <errno.h>
#include <grpc/grpc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Connection settings: flag, environment variable, config-file key. */
struct setting {
	const char *flag;
	const char *env;
	const char *key;
	const char *value; /* the winner so far */
	int rank;          /* 3 flag, 2 environment, 1 file, 0 unset */
};

enum { S_SERVER, S_CACERT, S_CERT, S_KEY, S_SERVER_NAME, S_TIMEOUT, S_ON_BEHALF_OF, S_OUTPUT, S_N };

static struct setting settings[S_N] = {
    [S_SERVER] = {"server", "MATURITYCTL_SERVER", "server", NULL, 0},
    [S_CACERT] = {"cacert", "MATURITYCTL_CACERT", "cacert", NULL, 0},
    [S_CERT] = {"cert", "MATURITYCTL_CERT", "cert", NULL, 0},
    [S_KEY] = {"key", "MATURITYCTL_KEY", "key", NULL, 0},
    [S_SERVER_NAME] = {"server-name", "MATURITYCTL_SERVER_NAME", "server-name", NULL, 0},
    [S_TIMEOUT] = {"timeout", "MATURITYCTL_TIMEOUT", "timeout", NULL, 0},
    [S_ON_BEHALF_OF] = {"on-behalf-of", "MATURITYCTL_ON_BEHALF_OF", "on-behalf-of", NULL, 0},
    [S_OUTPUT] = {"output", "MATURITYCTL_OUTPUT", "output", NULL, 0},
};

static void set(int i, const char *v, int rank)
{
	if (rank >= settings[i].rank) {
		settings[i].value = v;
		settings[i].rank = rank;
	}
}

static const char *global_help =
    "Usage: maturityctl [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "The command-line client of maturityd: MLOps maturity assessments, scores, roadmaps,\n"
    "level transitions and reports, over mutual TLS.\n"
    "\n"
    "Connection (flag, else environment, else the config file):\n"
    "  --server HOST:PORT     MATURITYCTL_SERVER      server (default localhost:50051)\n"
    "  --cacert FILE          MATURITYCTL_CACERT      CA of the server certificate (default:\n"
    "                                                 the system's roots)\n"
    "  --cert FILE            MATURITYCTL_CERT        client certificate (PEM)\n"
    "  --key FILE             MATURITYCTL_KEY         its private key (PEM)\n"
    "  --server-name NAME     MATURITYCTL_SERVER_NAME name to check in the server certificate\n"
    "                                                 (default: the host of --server)\n"
    "  --timeout DURATION     MATURITYCTL_TIMEOUT     per call, e.g. 10s, 500ms, 2m (default\n"
    "                                                 30s; streams: none)\n"
    "  --on-behalf-of USER    MATURITYCTL_ON_BEHALF_OF act for USER (delegators only), e.g.\n"
    "                                                 user:alice@corp.example\n"
    "  --config FILE          the config file (default $XDG_CONFIG_HOME/maturityctl/config,\n"
    "                         else ~/.config/maturityctl/config): `key = value` lines with\n"
    "                         the keys server, cacert, cert, key, server-name, timeout,\n"
    "                         on-behalf-of, output; # starts a comment\n"
    "  -o, --output FORMAT    table (default), json (proto3 JSON; JSON lines for streams),\n"
    "                         or name (the resource names only, e.g. for $(...))\n"
    "\n"
    "Commands:\n";

static void print_commands(FILE *f, const char *group)
{
	for (const struct ctl_command *c = ctl_commands; c->group != NULL; c++) {
		char name[64];
		const char *nl;
		if (group != NULL && strcmp(group, c->group) != 0)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", c->group, c->verb ? " " : "",
		         c->verb ? c->verb : "");
		nl = strchr(c->help, '\n');
		fprintf(f, "  %-22s %.*s\n", name, nl ? (int)(nl - c->help) : (int)strlen(c->help),
		        c->help);
	}
}

static void print_global_help(FILE *f)
{
	fputs(global_help, f);
	print_commands(f, NULL);
	fputs("\nRun `maturityctl COMMAND --help` for a command's arguments.\n"
	      "Exit status: 0 ok, 1 a call failed, 2 usage error, 3 `gate check` not allowed.\n",
	      f);
}

static void print_command_help(const struct ctl_command *c, FILE *f)
{
	fprintf(f, "Usage: maturityctl %s%s%s %s\n\n%s\n", c->group, c->verb ? " " : "",
	        c->verb ? c->verb : "", c->usage, c->help);
	fputs("\nGlobal options (connection, -o json): see `maturityctl --help`.\n", f);
}

/* Reads `key = value` lines; the file is optional unless named with --config. */
static int load_config(const char *path, bool required)
{
	static char lines[64][1024];
	FILE *f = fopen(path, "r");
	int n = 0, lineno = 0;

	if (f == NULL) {
		if (required || errno != ENOENT)
			return ctl_usage_error("cannot read config file %s: %s", path,
			                       strerror(errno));
		return 0;
	}
	while (n < 64 && fgets(lines[n], sizeof(lines[n]), f) != NULL) {
		char *s = lines[n], *eq, *k, *v, *end;
		bool known = false;
		lineno++;
		s[strcspn(s, "\r\n")] = '\0';
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq == NULL) {
			fclose(f);
			return ctl_usage_error("%s:%d: want `key = value`", path, lineno);
		}
		k = s;
		for (end = eq; end > k && (end[-1] == ' ' || end[-1] == '\t'); end--)
			;
		*end = '\0';
		v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		for (end = v + strlen(v); end > v && (end[-1] == ' ' || end[-1] == '\t'); end--)
			;
		*end = '\0';
		for (int i = 0; i < S_N; i++) {
			if (strcmp(settings[i].key, k) == 0) {
				set(i, v, 1);
				known = true;
			}
		}
		if (!known) {
			fclose(f);
			return ctl_usage_error("%s:%d: unknown key \"%s\"", path, lineno, k);
		}
		n++;
	}
	fclose(f);
	return 0;
}

/* "10s", "500ms", "2m", "1h" or plain seconds, into milliseconds; -1 when malformed. */
static long parse_timeout(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return (long)(v * 1000);
	if (strcmp(end, "ms") == 0)
		return (long)v;
	if (strcmp(end, "m") == 0)
		return (long)(v * 60000);
	if (strcmp(end, "h") == 0)
		return (long)(v * 3600000);
	return -1;
}

/* Whether `name` (without dashes) is in the command's flag list; *takes_value and *repeat
 * describe it. */
static bool flag_known(const char *flags, const char *name, bool *takes_value, bool *repeat)
{
	size_t len = strlen(name);
	const char *p = flags;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		const char *e = p + strcspn(p, " =");
		if ((size_t)(e - p) == len && strncmp(p, name, len) == 0) {
			*takes_value = *e == '=';
			*repeat = *takes_value && e[1] == '*';
			return true;
		}
		p += strcspn(p, " ");
	}
	return false;
}

/* Which connection setting the argument `--name[=value]` (or -o) sets: its index, S_N for
 * --config, -1 for none. *inline_value is set for the --name=value form. */
static int global_option(const char *s, const char **inline_value)
{
	const char *eq;
	size_t len;
	int which = -1;

	*inline_value = NULL;
	if (strcmp(s, "-o") == 0)
		return S_OUTPUT;
	if (strncmp(s, "--", 2) != 0)
		return -1;
	eq = strchr(s, '=');
	len = eq ? (size_t)(eq - s - 2) : strlen(s + 2);
	if (len == 6 && strncmp(s + 2, "config", 6) == 0)
		which = S_N;
	for (int k = 0; k < S_N && which < 0; k++)
		if (strlen(settings[k].flag) == len && strncmp(s + 2, settings[k].flag, len) == 0)
			which = k;
	if (which >= 0 && eq != NULL)
		*inline_value = eq + 1;
	return which;
}

/* The command named by `group [verb]`, or NULL. */
static const struct ctl_command *lookup_command(const char *w0, const char *w1)
{
	for (const struct ctl_command *c = ctl_commands; w0 != NULL && c->group != NULL; c++)
		if (strcmp(c->group, w0) == 0 &&
		    (c->verb == NULL || (w1 != NULL && strcmp(c->verb, w1) == 0)))
			return c;
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *rest[256];
	int nrest = 0, rc = CTL_EXIT_USAGE;
	const char *config = NULL;
	bool help = false;
	const struct ctl_command *cmd = NULL;
	struct ctl_args a;
	struct ctl ctx;
	char path[1024];

	memset(&ctx, 0, sizeof(ctx));
	memset(&a, 0, sizeof(a));
	/* A closed stdout (`maturityctl export ... | head`) must end the program through a
	 * failed write, which the commands handle, not through a signal. */
	signal(SIGPIPE, SIG_IGN);

	/* The command, found first: a flag of its own wins over a global option of the same name
	 * (`attestation verify --key PUBLIC.pem` is not the client's key). */
	const char *words[2] = {NULL, NULL};
	int nwords = 0;
	for (int i = 1; i < argc && nwords < 2; i++) {
		const char *iv;
		if (strcmp(argv[i], "--") == 0)
			break;
		if (global_option(argv[i], &iv) >= 0) {
			i += iv == NULL;
			continue;
		}
		if (argv[i][0] != '-')
			words[nwords++] = argv[i];
	}
	const struct ctl_command *hint = lookup_command(words[0], words[1]);

	/* Global options may come anywhere; everything else is the command's. */
	for (int i = 1; i < argc; i++) {
		const char *s = argv[i];
		const char *v = NULL;
		int which;

		if (strcmp(s, "--") == 0) {
			while (++i < argc && nrest < 255)
				rest[nrest++] = argv[i];
			break;
		}
		if (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0) {
			help = true;
			continue;
		}
		which = global_option(s, &v);
		if (which >= 0 && which != S_N && hint != NULL && s[1] == '-') {
			char name[64];
			bool tv, rep;
			snprintf(name, sizeof(name), "%.*s", (int)strcspn(s + 2, "="), s + 2);
			if (flag_known(hint->flags, name, &tv, &rep))
				which = -1;
		}
		if (which < 0) {
			if (nrest < 255)
				rest[nrest++] = s;
			continue;
		}
		if (v == NULL) {
			if (i + 1 >= argc)
				return ctl_usage_error("%s needs a value", s);
			v = argv[++i];
		}
		if (which == S_N)
			config = v;
		else
			set(which, v, 3);
	}

	for (int k = 0; k < S_N; k++) {
		const char *e = getenv(settings[k].env);
		if (e != NULL && e[0] != '\0')
			set(k, e, 2);
	}
	if (config == NULL) {
		const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
		if (xdg != NULL && xdg[0] != '\0')
			snprintf(path, sizeof(path), "%s/maturityctl/config", xdg);
		else
			snprintf(path, sizeof(path), "%s/.config/maturityctl/config",
			         home ? home : ".");
		rc = load_config(path, false);
	} else {
		rc = load_config(config, true);
	}
	if (rc != 0)
		return rc;

	if (nrest == 0) {
		print_global_help(help ? stdout : stderr);
		return help ? CTL_EXIT_OK : CTL_EXIT_USAGE;
	}
	/* `group verb` or a one-word command. */
	bool group_known = false;
	for (const struct ctl_command *c = ctl_commands; c->group != NULL && cmd == NULL; c++) {
		if (strcmp(c->group, rest[0]) != 0)
			continue;
		group_known = true;
		if (c->verb == NULL)
			cmd = c;
		else if (nrest > 1 && strcmp(c->verb, rest[1]) == 0)
			cmd = c;
	}
	if (cmd == NULL) {
		if (!group_known) {
			ctl_usage_error("unknown command \"%s\" (see maturityctl --help)", rest[0]);
			return CTL_EXIT_USAGE;
		}
		if (help) {
			printf("Usage: maturityctl %s COMMAND\n\nCommands:\n", rest[0]);
			print_commands(stdout, rest[0]);
			return CTL_EXIT_OK;
		}
		fprintf(stderr, "maturityctl: %s needs one of:\n", rest[0]);
		print_commands(stderr, rest[0]);
		return CTL_EXIT_USAGE;
	}
	if (help) {
		print_command_help(cmd, stdout);
		return CTL_EXIT_OK;
	}

	for (int i = cmd->verb ? 2 : 1; i < nrest; i++) {
		const char *s = rest[i];
		bool takes_value, repeat;
		if (strncmp(s, "--", 2) == 0 || (s[0] == '-' && s[1] != '\0' && s[2] == '\0')) {
			const char *name = s[1] == '-' ? s + 2 : s + 1;
			const char *eq = strchr(name, '=');
			char buf[64];
			snprintf(buf, sizeof(buf), "%.*s",
			         eq ? (int)(eq - name) : (int)strlen(name), name);
			if (!flag_known(cmd->flags, buf, &takes_value, &repeat))
				return ctl_usage_error("%s: unknown option %s (see --help)",
				                       cmd->group, s);
			if (a.nopt >= CTL_MAX_ARGS)
				return ctl_usage_error("too many options");
			if (!repeat && ctl_has(&a, buf))
				return ctl_usage_error("%s given twice", s);
			if (eq != NULL) {
				snprintf(a.names[a.nopt], sizeof(a.names[a.nopt]), "%s", buf);
				a.opt[a.nopt].name = a.names[a.nopt];
			} else {
				a.opt[a.nopt].name = name;
			}
			a.opt[a.nopt].value = NULL;
			if (takes_value) {
				if (eq != NULL)
					a.opt[a.nopt].value = eq + 1;
				else if (i + 1 < nrest)
					a.opt[a.nopt].value = rest[++i];
				else
					return ctl_usage_error("%s needs a value", s);
			} else if (eq != NULL) {
				return ctl_usage_error("%s takes no value", buf);
			}
			a.nopt++;
		} else {
			if (a.npos >= CTL_MAX_ARGS)
				return ctl_usage_error("too many arguments");
			a.pos[a.npos++] = s;
		}
	}

	ctx.conn_opts.server =
	    settings[S_SERVER].value ? settings[S_SERVER].value : "localhost:50051";
	ctx.conn_opts.cacert = settings[S_CACERT].value;
	ctx.conn_opts.cert = settings[S_CERT].value;
	ctx.conn_opts.key = settings[S_KEY].value;
	ctx.conn_opts.server_name = settings[S_SERVER_NAME].value;
	ctx.conn_opts.on_behalf_of = settings[S_ON_BEHALF_OF].value;
	if ((ctx.conn_opts.cert == NULL) != (ctx.conn_opts.key == NULL))
		return ctl_usage_error("--cert and --key go together");
	if (settings[S_TIMEOUT].value != NULL) {
		ctx.conn_opts.timeout_ms = parse_timeout(settings[S_TIMEOUT].value);
		if (ctx.conn_opts.timeout_ms <= 0)
			return ctl_usage_error(
			    "--timeout: \"%s\" is not a duration (e.g. 10s, 500ms)",
			    settings[S_TIMEOUT].value);
	}
	if (settings[S_OUTPUT].value != NULL) {
		if (strcmp(settings[S_OUTPUT].value, "json") == 0)
			ctx.json = true;
		else if (strcmp(settings[S_OUTPUT].value, "name") == 0)
			ctx.name_only = true;
		else if (strcmp(settings[S_OUTPUT].value, "table") != 0)
			return ctl_usage_error("--output: want table, json or name, not \"%s\"",
			                       settings[S_OUTPUT].value);
	}

	grpc_init();
	rc = cmd->run(&ctx, &a);
	ctl_conn_free(ctx.conn);
	grpc_shutdown_blocking();
	return rc;
}
