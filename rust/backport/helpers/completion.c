// SPDX-License-Identifier: GPL-2.0
/*
 * init_completion() for Rust, for trees whose rust/helpers has no
 * completion.c (6.12). Later trees have this very helper upstream, with
 * kernel::sync::Completion on top: scripts/link-tree.sh links this file in as
 * rust/helpers/completion.c only where the tree lacks one.
 */

#include <linux/completion.h>

void rust_helper_init_completion(struct completion *x)
{
	init_completion(x);
}
