/* SPDX-License-Identifier: MIT */
/* kiln over MPI (docs/mpi.md): every rank gets a device of the chosen backend by its
 * node-local rank, fills a kiln buffer with its own values, and kiln_mpi_allreduce
 * sums the buffers in place across ranks; then rank 0 broadcasts a buffer and each rank
 * passes a slice to its neighbour with an async send and receive (futures). Every rank
 * checks the result.
 *
 *   mpicc ... (or CMake: kiln::kiln_mpi)
 *   mpirun -np 4 ./mpi_allreduce [--device cpu|opencl] [--count N] */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/mpi.h"

#define CHECK(call)                                                        \
  do {                                                                     \
    kiln_status st_ = (call);                                              \
    if (st_ != KILN_SUCCESS) {                                             \
      fprintf(stderr, "%s failed: %s: %s\n", #call, kiln_status_name(st_), \
              kiln_last_error()->message);                                 \
      MPI_Abort(MPI_COMM_WORLD, 1);                                        \
    }                                                                      \
  } while (0)

int main(int argc, char **argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided); /* async calls need it */
  const char *backend = "cpu";
  size_t count = 1u << 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--device") == 0)
      backend = argv[i + 1];
    else if (strcmp(argv[i], "--count") == 0)
      count = (size_t)strtoull(argv[i + 1], NULL, 10);
  }

  kiln_mpi_desc desc = KILN_MPI_DESC_INIT;
  desc.backend = kiln_backend_from_name(backend);
  kiln_mpi mpi;
  CHECK(kiln_mpi_init(MPI_COMM_WORLD, &desc, &mpi));
  kiln_mpi_info info = KILN_MPI_INFO_INIT;
  CHECK(kiln_mpi_get_info(mpi, &info));
  kiln_device_props props = KILN_DEVICE_PROPS_INIT;
  CHECK(kiln_device_get_props(info.device, &props));
  printf("rank %d of %d (node-local %d of %d): %s device %u, %s\n", info.rank, info.size,
         info.local_rank, info.local_size, backend, props.index, props.name);

  /* allreduce: rank r contributes x[i] = i + r; the sum is size * i + size*(size-1)/2 */
  kiln_buffer_desc bd = KILN_BUFFER_DESC_INIT;
  bd.bytes = count * sizeof(double);
  kiln_buffer x;
  CHECK(kiln_buffer_create(info.context, &bd, &x));
  double *host = malloc(bd.bytes);
  if (!host)
    MPI_Abort(MPI_COMM_WORLD, 1);
  for (size_t i = 0; i < count; i++)
    host[i] = (double)i + info.rank;
  CHECK(kiln_buffer_write(x, 0, bd.bytes, host));
  CHECK(kiln_mpi_allreduce(mpi, x, 0, count, KILN_MPI_DOUBLE, KILN_MPI_SUM));
  CHECK(kiln_buffer_read(x, 0, bd.bytes, host));
  size_t bad = 0;
  double n = info.size, offset = n * (n - 1) / 2;
  for (size_t i = 0; i < count; i++)
    bad += host[i] != n * (double)i + offset;

  /* bcast from rank 0, then a ring: send the first 1000 elements to the next rank */
  if (info.rank == 0)
    for (size_t i = 0; i < count; i++)
      host[i] = -(double)i;
  CHECK(kiln_buffer_write(x, 0, bd.bytes, host));
  CHECK(kiln_mpi_bcast(mpi, x, 0, bd.bytes, 0));
  size_t slice = count < 1000 ? count : 1000;
  kiln_buffer in;
  bd.bytes = slice * sizeof(double);
  CHECK(kiln_buffer_create(info.context, &bd, &in));
  kiln_stream stream;
  CHECK(kiln_stream_create(info.context, NULL, &stream));
  kiln_future done[2];
  int next = (info.rank + 1) % info.size, prev = (info.rank + info.size - 1) % info.size;
  CHECK(kiln_mpi_recv_async(mpi, stream, in, 0, bd.bytes, prev, 7, &done[0]));
  CHECK(kiln_mpi_send_async(mpi, stream, x, 0, bd.bytes, next, 7, &done[1]));
  kiln_future both;
  CHECK(kiln_future_when_all(done, 2, &both));
  CHECK(kiln_future_wait(&both));
  CHECK(kiln_buffer_read(in, 0, bd.bytes, host));
  for (size_t i = 0; i < slice; i++)
    bad += host[i] != -(double)i;

  free(host);
  CHECK(kiln_stream_destroy(stream));
  CHECK(kiln_buffer_destroy(in));
  CHECK(kiln_buffer_destroy(x));
  CHECK(kiln_mpi_finalize(mpi)); /* destroys the context kiln_mpi_init made */
  unsigned long long bad_all = 0, mine = bad;
  MPI_Reduce(&mine, &bad_all, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (info.rank == 0)
    printf("%s: %llu wrong elements over %d ranks\n", bad_all ? "FAIL" : "PASS", bad_all,
           info.size);
  MPI_Finalize();
  return bad ? 1 : 0;
}
