// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The kernel licence of the linked connscope object, stated once (see LICENSE). */
#include "lib/common.bpf.h"

/* GPL-compatible: the programs call GPL-only helpers (bpf_probe_read_kernel,
 * bpf_get_current_task, the tracing helpers); the kernel reads this string. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";
