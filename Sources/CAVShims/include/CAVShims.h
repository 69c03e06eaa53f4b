int cavshims_placeholder(void);
