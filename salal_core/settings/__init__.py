"""The settings a command line gives a run: the flag table, each number's bounds, and what
`--resume` may change. Below run/, which checks a resume against them."""
