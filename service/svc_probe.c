/* The health probe subcommand: one Check call over plaintext h2c. */
#include "svc_probe.h"

#include "grpc/health/v1/health.pb-c.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_TIMEOUT_MS 3000

/* A listen address is not always a target: 0.0.0.0 and [::] mean "this host". */
static void target_of(const char *addr, char *out, size_t n)
{
	if (strncmp(addr, "0.0.0.0:", 8) == 0)
		snprintf(out, n, "127.0.0.1:%s", addr + 8);
	else if (strncmp(addr, "[::]:", 5) == 0)
		snprintf(out, n, "[::1]:%s", addr + 5);
	else if (addr[0] == ':')
		snprintf(out, n, "127.0.0.1%s", addr);
	else
		snprintf(out, n, "%s", addr);
}

/* 1 SERVING, 0 anything else; *what says which. */
static int check(const char *target, const char **what)
{
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	grpc_channel *ch = grpc_channel_create(target, creds, NULL);
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	                                     gpr_time_from_millis(PROBE_TIMEOUT_MS, GPR_TIMESPAN));
	grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
	grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
	                                           NULL, deadline, NULL);
	grpc_slice empty = grpc_empty_slice();
	grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&empty, 1), *resp = NULL;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	int ok = 0, tag = 0;

	grpc_channel_credentials_release(creds);
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = req;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &resp;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	*what = "no answer";
	if (grpc_call_start_batch(call, ops, 6, &tag, NULL) == GRPC_CALL_OK &&
	    grpc_completion_queue_pluck(cq, &tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type ==
	        GRPC_OP_COMPLETE &&
	    status == GRPC_STATUS_OK && resp != NULL) {
		grpc_byte_buffer_reader rd;
		grpc_slice all;
		Grpc__Health__V1__HealthCheckResponse *r;

		grpc_byte_buffer_reader_init(&rd, resp);
		all = grpc_byte_buffer_reader_readall(&rd);
		grpc_byte_buffer_reader_destroy(&rd);
		r = grpc__health__v1__health_check_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
		                                                    GRPC_SLICE_START_PTR(all));
		grpc_slice_unref(all);
		if (r != NULL) {
			ok = r->status ==
			     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
			*what = ok ? "SERVING" : "NOT_SERVING";
			grpc__health__v1__health_check_response__free_unpacked(r, NULL);
		}
	}
	grpc_byte_buffer_destroy(req);
	if (resp != NULL)
		grpc_byte_buffer_destroy(resp);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_call_unref(call);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	return ok;
}

int svc_probe_main(int argc, char **argv)
{
	const char *addr = getenv("MATURITYD_HEALTH_LISTEN");
	const char *what = "";
	char target[300];
	int ok;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--health-addr") == 0 && i + 1 < argc)
			addr = argv[++i];
		else if (strncmp(argv[i], "--health-addr=", 14) == 0)
			addr = argv[i] + 14;
		else {
			fprintf(stderr,
			        "maturityd health: unknown argument \"%s\" (usage: maturityd "
			        "health [--health-addr ADDR])\n",
			        argv[i]);
			return 2;
		}
	}
	if (addr == NULL || addr[0] == '\0') {
		fprintf(stderr, "maturityd health: --health-addr (or MATURITYD_HEALTH_LISTEN) is "
		                "required\n");
		return 2;
	}
	target_of(addr, target, sizeof(target));
	grpc_init();
	ok = check(target, &what);
	grpc_shutdown_blocking();
	printf("%s: %s\n", target, what);
	return ok ? 0 : 1;
}
