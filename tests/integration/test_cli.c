/* maturityctl against the real maturityd over mutual TLS: every command once (table and JSON),
 * errors with their status names and field violations, exit statuses, where the connection
 * settings come from (flag > environment > config file), export resumed from a middle cursor,
 * `call` through JSON, and an export into a closed pipe. The binary is run as users run it. */
#include "itest.h"

// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define OUT_MAX (256 * 1024)

static char out[OUT_MAX], err[OUT_MAX];
static char tmpdir[256];

static void slurp_fd(int fd, char *buf, size_t n)
{
	ssize_t r;
	size_t got = 0;

	lseek(fd, 0, SEEK_SET);
	while (got + 1 < n && (r = read(fd, buf + got, n - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = '\0';
}

/* Runs maturityctl with args (NULL-terminated) and stdin text (NULL: /dev/null); its stdout and
 * stderr land in out and err. Returns the exit status, or -1 when it died of a signal. */
static int ctl_in(const char *input, const char *const *args)
{
	char of[300], ef[300], inf[300];
	int ofd, efd, ifd, status;
	pid_t pid;

	snprintf(of, sizeof(of), "%s/out.XXXXXX", tmpdir);
	snprintf(ef, sizeof(ef), "%s/err.XXXXXX", tmpdir);
	snprintf(inf, sizeof(inf), "%s/in.XXXXXX", tmpdir);
	ofd = mkstemp(of);
	efd = mkstemp(ef);
	ifd = mkstemp(inf);
	assert_true(ofd >= 0 && efd >= 0 && ifd >= 0);
	if (input != NULL)
		assert_int_equal(write(ifd, input, strlen(input)), (ssize_t)strlen(input));
	lseek(ifd, 0, SEEK_SET);
	pid = fork();
	if (pid == 0) {
		const char *argv[64];
		size_t k = 0;
		argv[k++] = MATURITYCTL_BIN;
		for (size_t i = 0; args[i] != NULL && k < 63; i++)
			argv[k++] = args[i];
		argv[k] = NULL;
		dup2(ifd, 0);
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	slurp_fd(ofd, out, sizeof(out));
	slurp_fd(efd, err, sizeof(err));
	close(ofd);
	close(efd);
	close(ifd);
	unlink(of);
	unlink(ef);
	unlink(inf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CTL(...) ctl_in(NULL, (const char *const[]){__VA_ARGS__, NULL})
#define CTL_IN(input, ...) ctl_in(input, (const char *const[]){__VA_ARGS__, NULL})

static void expect_rc(int rc, int want, const char *what)
{
	if (rc != want)
		fail_msg("%s: want exit %d, got %d\nstdout: %s\nstderr: %s", what, want, rc, out,
		         err);
}

static void expect_out(const char *needle)
{
	if (strstr(out, needle) == NULL)
		fail_msg("stdout lacks \"%s\":\n%s\nstderr: %s", needle, out, err);
}

static void expect_err(const char *needle)
{
	if (strstr(err, needle) == NULL)
		fail_msg("stderr lacks \"%s\":\n%s", needle, err);
}

static json_t *out_json(void)
{
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);

	if (j == NULL)
		fail_msg("stdout is not JSON (%s): %s", je.text, out);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s != NULL ? s : "";
}

static size_t count_lines(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static char pki_file[8][600];

/* The connection for `who` in the environment (the usual way scripts set it). */
static void use_env(const char *who)
{
	char cert[64], key[64];

	snprintf(cert, sizeof(cert), "%s.pem", who);
	snprintf(key, sizeof(key), "%s.key", who);
	setenv("MATURITYCTL_SERVER", g_srv.target, 1);
	setenv("MATURITYCTL_CACERT", tpki_path(&g_srv, "ca.pem", pki_file[0], sizeof(pki_file[0])),
	       1);
	setenv("MATURITYCTL_CERT", tpki_path(&g_srv, cert, pki_file[1], sizeof(pki_file[1])), 1);
	setenv("MATURITYCTL_KEY", tpki_path(&g_srv, key, pki_file[2], sizeof(pki_file[2])), 1);
}

static int setup(void **state)
{
	int rc = itest_setup(state);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_cli.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	/* No user's config file may leak into the tests. */
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	unsetenv("MATURITYCTL_ON_BEHALF_OF");
	unsetenv("MATURITYCTL_OUTPUT");
	unsetenv("MATURITYCTL_TIMEOUT");
	unsetenv("MATURITYCTL_SERVER_NAME");
	return rc;
}

static int teardown(void **state)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return itest_teardown(state);
}

#define SKIP_WITHOUT_ENV()             \
	do {                           \
		if (!tenv_available()) \
			skip();        \
	} while (0)

static void test_cli_help_and_usage(void **state)
{
	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL("--help"), 0, "--help");
	expect_out("Commands:");
	expect_out("gate check");
	expect_rc(CTL("org", "--help"), 0, "org --help");
	expect_out("org create");
	expect_rc(CTL("gate", "check", "--help"), 0, "gate check --help");
	expect_out("--min-level N");
	expect_rc(CTL("org"), 2, "org without a verb");
	expect_rc(CTL("frobnicate"), 2, "unknown command");
	expect_err("unknown command");
	expect_rc(CTL("org", "get"), 2, "org get without ORG");
	expect_rc(CTL("org", "list", "--bogus"), 2, "unknown option");
	expect_err("--bogus");
	expect_rc(CTL("gate", "check", "acme"), 2, "gate check without --min-level");
	expect_rc(CTL("-o", "yaml", "whoami"), 2, "bad output format");
	expect_rc(CTL("--timeout", "soon", "whoami"), 2, "bad timeout");
	expect_rc(CTL("completion", "bash"), 0, "completion bash");
	expect_out("complete -F _maturityctl maturityctl");
	expect_out("\"gate check\") flags=\" --min-level --dimension --require");
}

static void test_cli_whoami_and_model(void **state)
{
	json_t *j;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL("whoami"), 0, "whoami");
	expect_out("principal:");
	expect_out("spiffe://maturityd.dev/admin");
	expect_out("bootstrap admin:   yes");
	expect_rc(CTL("whoami", "-o", "json"), 0, "whoami -o json");
	j = out_json();
	assert_string_equal(jstr(j, "principal"), "spiffe://maturityd.dev/admin");
	assert_true(json_is_true(json_object_get(j, "bootstrapAdmin")));
	json_decref(j);

	expect_rc(CTL("model", "show"), 0, "model show");
	expect_out("Automated Training");
	expect_out("model_creation");
	expect_rc(CTL("-o", "json", "model", "show", "mlops-v1"), 0, "model show -o json");
	j = out_json();
	assert_string_equal(jstr(j, "name"), "models/mlops-v1");
	assert_int_equal(json_array_size(json_object_get(j, "levels")), 5);
	json_decref(j);
}

static void test_cli_org_commands_and_errors(void **state)
{
	json_t *j;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL("org", "create", "acme", "--display-name", "Acme ML", "--label", "team=ml",
	              "--target-level", "3"),
	          0, "org create");
	expect_out("display name:      Acme ML");
	expect_out("target level:      3 Automated Model Deployment");
	expect_rc(CTL("org", "get", "acme", "-o", "json"), 0, "org get ID");
	j = out_json();
	assert_string_equal(jstr(j, "name"), "organizations/acme");
	assert_string_equal(jstr(json_object_get(j, "labels"), "team"), "ml");
	assert_int_equal(json_integer_value(json_object_get(j, "targetLevel")), 3);
	assert_null(json_object_get(j, "currentLevel")); /* default values are omitted */
	json_decref(j);
	expect_rc(CTL("org", "get", "organizations/acme"), 0, "org get NAME");
	expect_out("current level:     0 No MLOps");

	expect_rc(CTL("org", "update", "acme", "--description", "the ML team", "--policy",
	              "manual-review"),
	          0, "org update");
	expect_out("description:       the ML team");
	expect_rc(CTL("org", "list"), 0, "org list");
	expect_out("NAME");
	expect_out("organizations/acme");
	expect_out("0 No MLOps");
	expect_out("team=ml");
	expect_rc(CTL("org", "list", "-o", "json", "--page-size", "1"), 0, "org list -o json");
	j = out_json();
	assert_int_equal(json_array_size(json_object_get(j, "organizations")), 1);
	json_decref(j);

	/* NOT_FOUND: the status name and the message on stderr, exit 1. */
	expect_rc(CTL("org", "get", "nope"), 1, "org get nope");
	expect_err("NOT_FOUND: ");
	expect_err("organizations/nope");
	assert_string_equal(out, "");
	/* INVALID_ARGUMENT: every field violation on its own line. */
	expect_rc(CTL("org", "create", "Bad_ID", "--display-name", "x"), 1, "org create Bad_ID");
	expect_err("INVALID_ARGUMENT: ");
	expect_err("\n  organization_id: ");

	expect_rc(CTL("org", "create", "doomed", "--display-name", "Doomed"), 0, "org create 2");
	expect_rc(CTL("org", "delete", "doomed"), 0, "org delete");
	expect_out("deleted");
	expect_rc(CTL("org", "get", "doomed"), 1, "org get deleted");
}

/* The value of `key` in the JSON on stdout, copied into buf. */
static const char *out_field(const char *key, char *buf, size_t n)
{
	json_t *j = out_json();

	snprintf(buf, n, "%s", jstr(j, key));
	json_decref(j);
	assert_true(buf[0] != '\0');
	return buf;
}

static char level1_answers[4096];

static void test_cli_assessment_transition_flow(void **state)
{
	char a[256], t[256], bind[256];
	json_t *j, *p;
	size_t i;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	/* Every level-1 practice implemented: enough for an UPGRADE to level 1. */
	expect_rc(CTL("-o", "json", "model", "show"), 0, "model");
	j = out_json();
	level1_answers[0] = '\0';
	json_array_foreach(json_object_get(j, "practices"), i, p)
	{
		if (json_integer_value(json_object_get(p, "level")) == 1)
			snprintf(level1_answers + strlen(level1_answers),
			         sizeof(level1_answers) - strlen(level1_answers),
			         "%s implemented\n", jstr(p, "id"));
	}
	json_decref(j);

	expect_rc(CTL("binding", "create", "spiffe://maturityd.dev/portal", "editor",
	              "--organization", "acme", "-o", "json"),
	          0, "binding create");
	out_field("name", bind, sizeof(bind));
	expect_rc(CTL("binding", "list"), 0, "binding list");
	expect_out("spiffe://maturityd.dev/portal");
	expect_out("editor");

	use_env("portal");
	/* -o name: just the name, for $(...) in scripts. */
	expect_rc(CTL("assessment", "create", "acme", "--title", "Q1", "-o", "name"), 0,
	          "assessment create");
	assert_true(strncmp(out, "organizations/acme/assessments/", 31) == 0);
	assert_int_equal(count_lines(out), 1);
	snprintf(a, sizeof(a), "%.*s", (int)strcspn(out, "\n"), out);
	/* An unknown practice: INVALID_ARGUMENT naming the answer's index. */
	expect_rc(CTL("assessment", "answer", a, "people.bogus=implemented"), 1, "bad answer");
	expect_err("INVALID_ARGUMENT: ");
	expect_err("\n  answers[0].practice_id: ");
	expect_rc(CTL_IN(level1_answers, "assessment", "answer", a, "--file", "-"), 0,
	          "assessment answer --file -");
	expect_out("state:             draft");
	expect_out("implemented");
	expect_rc(CTL("assessment", "answer", a, "model_creation.managed_compute=partial", "--note",
	              "half way"),
	          0, "assessment answer PRACTICE=STATUS");
	expect_out("half way");
	expect_rc(CTL("assessment", "get", a, "-o", "json"), 0, "assessment get");
	j = out_json();
	assert_string_equal(jstr(j, "state"), "STATE_DRAFT");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "score"), "overallLevel")), 1);
	json_decref(j);
	expect_rc(CTL("assessment", "list", "acme"), 0, "assessment list");
	expect_out(a);
	expect_out("1 DevOps but no MLOps");
	expect_rc(CTL("roadmap", "acme", "--assessment", a), 0, "roadmap");
	expect_out("Level 2 Automated Training");
	expect_rc(CTL("assessment", "submit", a), 0, "assessment submit");
	expect_out("state:             submitted");

	/* The portal submitted: the admin approves (four-eyes). */
	use_env("admin");
	expect_rc(CTL("transition", "list", "acme", "--state", "proposed"), 0, "transition list");
	expect_out("0 No MLOps");
	expect_out("upgrade");
	expect_rc(CTL("transition", "list", "-o", "json"), 0, "transition list -o json");
	j = out_json();
	snprintf(t, sizeof(t), "%s",
	         jstr(json_array_get(json_object_get(j, "transitions"), 0), "name"));
	json_decref(j);
	expect_rc(CTL("transition", "get", t), 0, "transition get");
	expect_out("state:             proposed");
	expect_rc(CTL("transition", "approve", t), 0, "transition approve");
	expect_out("state:             applied");
	expect_rc(CTL("transition", "approve", t), 1, "approve twice");
	expect_err("FAILED_PRECONDITION: ");
	expect_rc(CTL("org", "get", "acme"), 0, "org get after approve");
	expect_out("current level:     1 DevOps but no MLOps");

	/* A regression proposed by an empty submission, then rejected. */
	use_env("portal");
	expect_rc(CTL("assessment", "create", "acme", "--title", "Q2", "-o", "json"), 0,
	          "create 2");
	out_field("name", a, sizeof(a));
	expect_rc(CTL("assessment", "submit", a), 0, "submit 2");
	use_env("admin");
	expect_rc(CTL("transition", "list", "acme", "--state", "proposed", "-o", "json"), 0,
	          "list proposed");
	j = out_json();
	snprintf(t, sizeof(t), "%s",
	         jstr(json_array_get(json_object_get(j, "transitions"), 0), "name"));
	json_decref(j);
	expect_rc(CTL("transition", "reject", t, "--reason", "a slip"), 0, "transition reject");
	expect_out("state:             rejected");
	expect_out("a slip");

	/* A draft to delete. */
	use_env("portal");
	expect_rc(CTL("assessment", "create", "acme", "-o", "json"), 0, "create 3");
	out_field("name", a, sizeof(a));
	expect_rc(CTL("assessment", "delete", a), 0, "assessment delete");
	expect_rc(CTL("assessment", "get", a), 1, "get deleted");
	expect_err("NOT_FOUND");

	use_env("admin");
	expect_rc(CTL("binding", "delete", bind), 0, "binding delete");
	expect_rc(CTL("audit", "--principal", "spiffe://maturityd.dev/portal"), 0, "audit");
	expect_out("/mlops.maturity.v1.AssessmentService/SubmitAssessment");
	expect_rc(CTL("audit", "-o", "json", "--page-size", "2"), 0, "audit -o json");
	j = out_json();
	assert_int_equal(json_array_size(json_object_get(j, "auditEvents")), 2);
	assert_true(json_string_length(json_object_get(j, "nextPageToken")) > 0);
	json_decref(j);
}

static void test_cli_score_and_portfolio(void **state)
{
	json_t *j;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL_IN("people.regular_communication implemented\n", "score"), 0, "score stdin");
	expect_out("overall level:");
	expect_out("people");
	expect_rc(
	    CTL_IN("[{\"practiceId\":\"people.regular_communication\","
	           "\"status\":\"PRACTICE_STATUS_IMPLEMENTED\"},"
	           "{\"practiceId\":\"model_creation.managed_compute\",\"status\":\"partial\"}]",
	           "score", "-", "-o", "json"),
	    0, "score JSON");
	j = out_json();
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(j, "score"), "satisfiedCount")), 1);
	json_decref(j);
	expect_rc(CTL_IN("people.regular_communication sometimes\n", "score"), 2, "bad status");
	expect_err("PRACTICE_STATUS_SOMETIMES");

	expect_rc(CTL("portfolio"), 0, "portfolio");
	expect_out("organizations:");
	expect_out("1 DevOps but no MLOps");
	expect_rc(CTL("portfolio", "--label", "team=ml", "-o", "json"), 0, "portfolio -o json");
	j = out_json();
	assert_string_equal(jstr(j, "organizationCount"), "1"); /* int64: a string */
	json_decref(j);
}

static void test_cli_export_resume_and_closed_pipe(void **state)
{
	char full[OUT_MAX], cursor[512], name[64];
	const char *line;
	json_t *j;
	int status;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL("org", "create", "bulk", "--display-name", "Bulk"), 0, "org create bulk");
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "draft %d", i);
		expect_rc(CTL("assessment", "create", "bulk", "--title", name), 0, "create");
	}
	expect_rc(CTL("export", "assessments", "--organization", "bulk"), 0, "export");
	assert_int_equal(count_lines(out), 8);
	snprintf(full, sizeof(full), "%s", out);
	/* Resume after the third line: the rest equals the full export's rest. */
	line = full;
	for (int i = 0; i < 2; i++)
		line = strchr(line, '\n') + 1;
	char third[OUT_MAX];
	snprintf(third, sizeof(third), "%.*s", (int)(strchr(line, '\n') - line), line);
	j = json_loads(third, 0, NULL);
	assert_non_null(j);
	assert_non_null(json_object_get(j, "assessment"));
	snprintf(cursor, sizeof(cursor), "%s", jstr(j, "cursor"));
	json_decref(j);
	expect_rc(CTL("export", "assessments", "--organization", "organizations/bulk", "--cursor",
	              cursor),
	          0, "export --cursor");
	assert_string_equal(out, strchr(line, '\n') + 1);

	/* Into a file, as a nightly job does. */
	char file[300], cmd[1200];
	snprintf(file, sizeof(file), "%s/export.jsonl", tmpdir);
	snprintf(cmd, sizeof(cmd), "'%s' export assessments --organization bulk > '%s'",
	         MATURITYCTL_BIN, file);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(file, "r");
	assert_non_null(f);
	size_t got = fread(out, 1, sizeof(out) - 1, f);
	out[got] = '\0';
	fclose(f);
	assert_string_equal(out, full);

	expect_rc(CTL("export", "transitions"), 0, "export transitions");
	expect_out("{\"transition\":{");
	expect_out("\"cursor\":\"");

	/* A reader that stops early: the export ends quietly, without dying of SIGPIPE. */
	char bash[1400];
	snprintf(bash, sizeof(bash),
	         "bash -c '\"$0\" export assessments | head -1 > /dev/null; exit ${PIPESTATUS[0]}' "
	         "'%s'",
	         MATURITYCTL_BIN);
	status = system(bash);
	assert_true(WIFEXITED(status));
	assert_true(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
	/* A pipe closed before the first line. */
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execl(MATURITYCTL_BIN, MATURITYCTL_BIN, "export", "assessments", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	close(p[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status))
		fail_msg("export into a closed pipe died of signal %d", WTERMSIG(status));
	assert_true(WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 1);
}

static void test_cli_call_round_trips_json(void **state)
{
	char via_get[OUT_MAX], req[300];
	json_t *a, *b;

	SKIP_WITHOUT_ENV();
	use_env("admin");
	expect_rc(CTL("org", "get", "acme", "-o", "json"), 0, "org get");
	snprintf(via_get, sizeof(via_get), "%s", out);
	expect_rc(CTL("call", "mlops.maturity.v1.OrganizationService/GetOrganization", "-d",
	              "{\"name\":\"organizations/acme\"}"),
	          0, "call");
	a = json_loads(via_get, 0, NULL);
	b = out_json();
	assert_true(json_equal(a, b));
	/* The response fed back as a request: UpdateOrganization takes it whole. */
	json_t *upd = json_pack("{s:O,s:s}", "organization", b, "updateMask", "description");
	char *text = json_dumps(upd, 0);
	snprintf(req, sizeof(req), "%s/req.json", tmpdir);
	FILE *f = fopen(req, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	char at[310];
	snprintf(at, sizeof(at), "@%s", req);
	expect_rc(
	    CTL("call", "/mlops.maturity.v1.OrganizationService/UpdateOrganization", "-d", at), 0,
	    "call -d @FILE");
	json_t *c = out_json();
	assert_string_equal(jstr(c, "description"), jstr(b, "description"));
	assert_string_equal(jstr(c, "displayName"), "Acme ML");
	json_decref(c);
	expect_rc(CTL_IN("{\"name\": \"organizations/acme\"}", "call",
	                 "mlops.maturity.v1.OrganizationService/GetOrganization", "-d", "-"),
	          0, "call -d -");
	expect_out("\"displayName\": \"Acme ML\"");
	free(text);
	json_decref(upd);
	json_decref(a);
	json_decref(b);

	expect_rc(CTL("call", "grpc.health.v1.Health/Check"), 0, "health");
	expect_out("\"status\": \"SERVING\"");
	expect_rc(CTL("call", "mlops.maturity.v1.ReportingService/ExportAssessments", "-d",
	              "{\"organization\":\"organizations/bulk\"}"),
	          0, "call a stream");
	assert_int_equal(count_lines(out), 8);
	expect_rc(CTL("call", "mlops.maturity.v1.Nope/Get"), 2, "unknown method");
	expect_rc(CTL("call", "mlops.maturity.v1.OrganizationService/GetOrganization", "-d",
	              "{\"nmae\":\"x\"}"),
	          2, "unknown field");
	expect_err("unknown field \"nmae\" in mlops.maturity.v1.GetOrganizationRequest");
	expect_rc(CTL("call", "mlops.maturity.v1.OrganizationService/GetOrganization", "-d", "{"),
	          2, "bad JSON");
}

static void write_config(const char *text)
{
	char dir[300], path[400];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/maturityctl", tmpdir);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/config", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_cli_config_precedence(void **state)
{
	char cfg[4096], ca[600], pc[600], pk[600], rc_[600], rk[600], ac[600], ak[600];
	json_t *j;

	SKIP_WITHOUT_ENV();
	tpki_path(&g_srv, "ca.pem", ca, sizeof(ca));
	tpki_path(&g_srv, "portal.pem", pc, sizeof(pc));
	tpki_path(&g_srv, "portal.key", pk, sizeof(pk));
	tpki_path(&g_srv, "reporter.pem", rc_, sizeof(rc_));
	tpki_path(&g_srv, "reporter.key", rk, sizeof(rk));
	tpki_path(&g_srv, "admin.pem", ac, sizeof(ac));
	tpki_path(&g_srv, "admin.key", ak, sizeof(ak));
	unsetenv("MATURITYCTL_SERVER");
	unsetenv("MATURITYCTL_CACERT");
	unsetenv("MATURITYCTL_CERT");
	unsetenv("MATURITYCTL_KEY");
	snprintf(cfg, sizeof(cfg),
	         "# written by test_cli\nserver = %s\ncacert = %s\ncert = %s\nkey = %s\n"
	         "output = json\n",
	         g_srv.target, ca, pc, pk);
	write_config(cfg);
	/* The file alone. */
	expect_rc(CTL("whoami"), 0, "config file");
	j = out_json();
	assert_string_equal(jstr(j, "principal"), "spiffe://maturityd.dev/portal");
	json_decref(j);
	/* The environment over the file. */
	setenv("MATURITYCTL_CERT", rc_, 1);
	setenv("MATURITYCTL_KEY", rk, 1);
	expect_rc(CTL("whoami"), 0, "env over file");
	j = out_json();
	assert_string_equal(jstr(j, "principal"), "spiffe://maturityd.dev/reporter");
	json_decref(j);
	/* Flags over both. */
	expect_rc(CTL("whoami", "--cert", ac, "--key", ak, "-o", "table"), 0, "flags over env");
	expect_out("principal:         spiffe://maturityd.dev/admin");
	/* A wrong server from the environment beats the file's right one. */
	setenv("MATURITYCTL_SERVER", "127.0.0.1:1", 1);
	expect_rc(CTL("whoami", "--timeout", "3s"), 1, "env server");
	expect_err("UNAVAILABLE");
	expect_rc(CTL("--server", g_srv.target, "whoami"), 0, "flag server");
	/* Another file named with --config; a bad line is a usage error. */
	write_config("server = x\nbogus = 1\n");
	expect_rc(CTL("whoami"), 2, "bad config key");
	expect_err("unknown key \"bogus\"");
	write_config("");
	unsetenv("MATURITYCTL_SERVER");
	/* The server name checked against its certificate: "localhost" is in it, "other" not. */
	use_env("admin");
	expect_rc(CTL("whoami", "--server-name", "localhost"), 0, "--server-name localhost");
	expect_rc(CTL("whoami", "--server-name", "other.example", "--timeout", "3s"), 1,
	          "--server-name other");
	expect_err("UNAVAILABLE");
	/* A certificate without its key. */
	unsetenv("MATURITYCTL_KEY");
	expect_rc(CTL("whoami"), 2, "env cert alone");
	expect_rc(CTL("whoami", "--cert", ac), 2, "--cert alone");
	use_env("admin");
}

static void test_cli_round_two_commands_reach_the_server(void **state)
{
	/* Evidence, events and gates: wired through the same converter; a server without them
	 * answers UNIMPLEMENTED (exit 1), one with them answers (exit 0, or 3 for the gate). */
	static const char *const cmds[][8] = {
	    {"evidence", "report", "acme", "--practice", "people.regular_communication", "--status",
	     "implemented", NULL},
	    {"evidence", "list", "acme", NULL},
	    {"evidence", "live", "acme", NULL},
	    {"events", "list", NULL},
	    {"gate", "check", "acme", "--min-level", "4", NULL},
	    {"attestation", "keys", NULL},
	};

	SKIP_WITHOUT_ENV();
	use_env("admin");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		const char *args[12] = {0};
		size_t k = 0;
		for (; cmds[i][k] != NULL; k++)
			args[k] = cmds[i][k];
		if (strcmp(cmds[i][0], "evidence") == 0 && strcmp(cmds[i][1], "report") == 0) {
			args[k++] = "--source";
			args[k++] = "ci/test";
		}
		int rc = ctl_in(NULL, args);
		if (rc == 1)
			expect_err("UNIMPLEMENTED");
		else if (!(rc == 0 || (rc == 3 && strcmp(cmds[i][0], "gate") == 0)))
			fail_msg("%s %s: exit %d: %s", cmds[i][0], cmds[i][1], rc, err);
	}
	expect_rc(CTL("gate", "check", "acme", "--min-level", "1", "--subject", "img"), 2,
	          "bad subject");
	expect_rc(CTL("gate", "check", "acme", "--min-level", "1", "--max-evidence-age", "soon"), 2,
	          "bad age");
	expect_rc(CTL("gate", "check", "acme", "--min-level", "1", "--out", "/tmp/x"), 2,
	          "--out without --attest");
	/* A watch ends only when told: here by its deadline, or at once on a server without it.
	 * Neither is a dropped connection, so it does not resume. */
	int wrc = CTL("events", "watch", "acme", "--timeout", "2s");
	expect_rc(wrc, 1, "events watch");
	if (strstr(err, "UNIMPLEMENTED") == NULL)
		expect_err("DEADLINE_EXCEEDED");
	/* Delegation: the header is sent; a server that knows it refuses a non-delegator. */
	int rc = CTL("whoami", "--on-behalf-of", "user:alice@corp.example");
	if (rc == 1)
		expect_err("PERMISSION_DENIED");
	else
		expect_rc(rc, 0, "whoami --on-behalf-of");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cli_help_and_usage),
	    cmocka_unit_test(test_cli_whoami_and_model),
	    cmocka_unit_test(test_cli_org_commands_and_errors),
	    cmocka_unit_test(test_cli_assessment_transition_flow),
	    cmocka_unit_test(test_cli_score_and_portfolio),
	    cmocka_unit_test(test_cli_export_resume_and_closed_pipe),
	    cmocka_unit_test(test_cli_call_round_trips_json),
	    cmocka_unit_test(test_cli_config_precedence),
	    cmocka_unit_test(test_cli_round_two_commands_reach_the_server),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
