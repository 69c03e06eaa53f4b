#include <hiredis.h>

#if defined(__linux__)
#include <sys/prctl.h>
#elif defined(__APPLE__)
#include <pthread.h>
#endif

/* Names the calling thread (Linux keeps the first 15 bytes), so that a connection's thread
   shows up in top -H, gdb and /proc. Foundation's Thread.name may be applied too late on
   Linux when the thread starts running before start() returns; this is synchronous. */
static inline void chiredis_name_current_thread(const char *name) {
#if defined(__linux__)
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
#elif defined(__APPLE__)
    pthread_setname_np(name);
#else
    (void)name;
#endif
}
