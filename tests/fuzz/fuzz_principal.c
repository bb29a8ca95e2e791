/* libFuzzer target: principal extraction from certificate bytes (what grpc hands us as the peer's
 * x509_pem_cert), and the syntax check of an asserted principal on the same bytes. Inputs are PEM
 * text; the corpus holds real certificates of every form. */
#include "auth.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char principal[MAT_MAX_PRINCIPAL + 1];
	struct mat_error err;

	mat_error_clear(&err);
	(void)auth_principal_from_pem((const char *)data, size, principal, sizeof(principal), &err);
	/* The same bytes as an asserted principal (x-on-behalf-of): any input, no crash. */
	mat_error_clear(&err);
	(void)auth_principal_check((const char *)data, size, "x-on-behalf-of", &err);
	return 0;
}
