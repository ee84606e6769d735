// The MPI C API as Swift sees it. MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ... are macros (Open MPI: addresses
// of global objects; MPICH: integer constants), which Swift cannot import; these inline functions hand
// them over, so the same Swift code builds against either implementation (pkg-config name "mpi").
#include <mpi.h>

static inline MPI_Comm cmpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype cmpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype cmpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype cmpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype cmpi_int(void) { return MPI_INT; }
static inline MPI_Op cmpi_sum(void) { return MPI_SUM; }
static inline MPI_Info cmpi_info_null(void) { return MPI_INFO_NULL; }
static inline int cmpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int cmpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline void *cmpi_in_place(void) { return MPI_IN_PLACE; }
