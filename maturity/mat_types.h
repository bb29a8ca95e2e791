/* Domain records shared by storage/, auth/ and service/: organizations, assessments, answers,
 * transitions, role bindings and audit events as plain C structs. No generated protobuf types
 * cross a library boundary; service/ converts. Enum values equal the proto enum numbers so the
 * conversion is a range check. Strings are heap-allocated and owned by the record; the
 * *_cleanup functions free them and zero the record (a zeroed record is valid and empty). */
#ifndef MAT_TYPES_H
#define MAT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of docs/api.md ("Limits"), in bytes unless said otherwise. */
#define MAT_MAX_DISPLAY_NAME 200
#define MAT_MAX_TITLE 200
#define MAT_MAX_DESCRIPTION 4000
#define MAT_MAX_NOTE 4000
#define MAT_MAX_REASON 4000
#define MAT_MAX_EVIDENCE_URI 2048
#define MAT_MAX_PRINCIPAL 512
#define MAT_MAX_LABELS 64
#define MAT_MAX_LABEL_KEY 63
#define MAT_MAX_LABEL_VALUE 63
#define MAT_MAX_ORG_ID 63
#define MAT_MAX_ANSWERS 256 /* answers in one UpdateAnswers/EvaluateAnswers request */
#define MAT_PAGE_SIZE_DEFAULT 50
#define MAT_PAGE_SIZE_MAX 1000
#define MAT_MAX_LEVEL 4
#define MAT_MAX_EVIDENCE_BATCH 100 /* pieces in one BatchReportEvidence request */

enum mat_status {
	MAT_STATUS_UNSPECIFIED = 0,
	MAT_STATUS_NOT_IMPLEMENTED = 1,
	MAT_STATUS_PARTIAL = 2,
	MAT_STATUS_IMPLEMENTED = 3,
	MAT_STATUS_NOT_APPLICABLE = 4,
};
#define MAT_STATUS_MAX MAT_STATUS_NOT_APPLICABLE

enum mat_policy {
	MAT_POLICY_UNSPECIFIED = 0,
	MAT_POLICY_MANUAL_REVIEW = 1,
	MAT_POLICY_AUTOMATIC = 2,
};

enum mat_assessment_state {
	MAT_ASSESSMENT_STATE_UNSPECIFIED = 0,
	MAT_ASSESSMENT_DRAFT = 1,
	MAT_ASSESSMENT_SUBMITTED = 2,
};

enum mat_transition_state {
	MAT_TRANSITION_STATE_UNSPECIFIED = 0,
	MAT_TRANSITION_PROPOSED = 1,
	MAT_TRANSITION_APPLIED = 2,
	MAT_TRANSITION_REJECTED = 3,
	MAT_TRANSITION_SUPERSEDED = 4,
};

enum mat_direction {
	MAT_DIRECTION_UNSPECIFIED = 0,
	MAT_DIRECTION_UPGRADE = 1,
	MAT_DIRECTION_REGRESSION = 2,
};

enum mat_role {
	MAT_ROLE_UNSPECIFIED = 0,
	MAT_ROLE_ADMIN = 1,
	MAT_ROLE_EDITOR = 2,
	MAT_ROLE_REVIEWER = 3,
	MAT_ROLE_VIEWER = 4,
	MAT_ROLE_REPORTER = 5,
	MAT_ROLE_EVIDENCE_WRITER = 6,
};
#define MAT_ROLE_MAX MAT_ROLE_EVIDENCE_WRITER

/* Times are microseconds since the Unix epoch (PostgreSQL timestamptz precision); 0 = unset. */
typedef int64_t mat_time_us;

struct mat_label {
	char *key;
	char *value;
};

struct mat_organization {
	char *id; /* "acme-ml", without "organizations/" */
	char *display_name;
	char *description;
	struct mat_label *labels; /* sorted by key */
	size_t n_labels;
	int current_level;
	int target_level;
	enum mat_policy transition_policy;
	char *last_assessment_id; /* assessment id or NULL */
	mat_time_us create_time;
	mat_time_us update_time;
	char *etag;
};

struct mat_answer {
	char *practice_id;
	enum mat_status status;
	char *note;         /* "" when none */
	char *evidence_uri; /* "" when none */
	mat_time_us update_time;
	char *updated_by;
};

/* The frozen score of a submitted assessment is recomputed from its frozen answers on read:
 * scoring is a pure function of (model, answers), so storing answers freezes the score. */
struct mat_assessment {
	char *org_id;
	char *id; /* UUIDv7, lower-case canonical text */
	char *title;
	char *model_id; /* "mlops-v1", without "models/" */
	enum mat_assessment_state state;
	struct mat_answer *answers; /* in catalog order of the model */
	size_t n_answers;
	char *creator;
	char *submitter; /* NULL until submitted */
	mat_time_us create_time;
	mat_time_us update_time;
	mat_time_us submit_time;
	char *etag;
};

struct mat_transition {
	char *org_id;
	char *id;
	char *assessment_id;
	int from_level;
	int to_level;
	enum mat_direction direction;
	enum mat_transition_state state;
	char *proposer;
	mat_time_us propose_time;
	char *decider; /* NULL until decided */
	mat_time_us decide_time;
	char *reason;
	char *etag;
	mat_time_us update_time;
};

struct mat_role_binding {
	char *id;
	char *principal;
	enum mat_role role;
	char *org_id; /* NULL or "" = global */
	char *creator;
	mat_time_us create_time;
};

struct mat_audit_event {
	char *id;
	mat_time_us time;
	char *principal;
	char *method; /* full gRPC method path */
	char *resource;
	int code; /* gRPC status code */
	char *request_id;
	char *delegator; /* who asserted `principal` for an end user; "" when no one did */
	int allowed;     /* a signed gate decision's verdict: 1 or 0; -1 for every other event */
};

/* An immutable observation of one practice of one organization, reported by automation. */
struct mat_evidence {
	char *org_id;
	char *id; /* UUIDv7, lower-case canonical text */
	char *practice_id;
	enum mat_status status; /* NOT_IMPLEMENTED, PARTIAL or IMPLEMENTED */
	char *source;
	char *reporter;
	mat_time_us observe_time;
	mat_time_us expire_time;
	char *uri;    /* "" when none */
	char *digest; /* "" when none */
	char *note;   /* "" when none */
	mat_time_us create_time;
};

void mat_organization_cleanup(struct mat_organization *o);
void mat_answer_cleanup(struct mat_answer *a);
void mat_assessment_cleanup(struct mat_assessment *a);
void mat_transition_cleanup(struct mat_transition *t);
void mat_role_binding_cleanup(struct mat_role_binding *b);
void mat_audit_event_cleanup(struct mat_audit_event *e);
void mat_evidence_cleanup(struct mat_evidence *e);

#endif
