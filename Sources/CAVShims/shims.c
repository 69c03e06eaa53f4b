int cavshims_placeholder(void) { return 0; }
