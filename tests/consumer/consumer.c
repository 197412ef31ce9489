/* SPDX-License-Identifier: MIT */
/* A program using an installed kiln: the version of the library it runs against must
 * be the one of the headers it was built with, and the status table must be there. */
#include <kiln.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  const char *name = kiln_status_name(KILN_ERROR_OUT_OF_RANGE);
  printf("kiln %s (%u); %s: %s\n", kiln_version_string(), kiln_version(), name,
         kiln_status_message(KILN_ERROR_OUT_OF_RANGE));
  if (kiln_version() != KILN_VERSION_NUMBER) {
    fprintf(stderr, "library version %u, headers %u\n", kiln_version(), KILN_VERSION_NUMBER);
    return 1;
  }
  if (strcmp(kiln_version_string(), KILN_VERSION_STRING) != 0 ||
      strcmp(name, "KILN_ERROR_OUT_OF_RANGE") != 0) {
    fprintf(stderr, "unexpected version string or status name\n");
    return 1;
  }
  return 0;
}
