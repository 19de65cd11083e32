// SPDX-License-Identifier: GPL-2.0
/*
 * init_completion() for Rust, backported for trees without it (6.12). Later
 * trees have this very helper upstream, with kernel::sync::Completion on top.
 */

#include <linux/completion.h>

void rust_helper_init_completion(struct completion *x)
{
	init_completion(x);
}
