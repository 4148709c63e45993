//! Load benchmark of a shop against the sandbox (work in progress).

fn main() {}
