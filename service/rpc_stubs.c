/* Services whose RPCs are not built yet: registered from their descriptors so every path of
 * API.md is known (and answered UNIMPLEMENTED by the loop) until their handlers land. */
#include "mlops/maturity/v1/reporting.pb-c.h"
#include "mlops/maturity/v1/transition.pb-c.h"
#include "svc.h"

const struct svc_service_impl svc_transition_service = {
    &mlops__maturity__v1__transition_service__descriptor, NULL, 0};
const struct svc_service_impl svc_reporting_service = {
    &mlops__maturity__v1__reporting_service__descriptor, NULL, 0};
