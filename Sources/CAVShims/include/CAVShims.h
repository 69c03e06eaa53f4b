// C helpers for libav macros and inline functions that Swift cannot import
// (AVERROR(), AVERROR_EOF, AV_NOPTS_VALUE, av_err2str, ...), a thread-local
// capture of libav's log messages, and an atomic flag used for cooperative
// cancellation through AVIOInterruptCB.
#ifndef CAVSHIMS_H
#define CAVSHIMS_H

#include <stddef.h>
#include <stdint.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>

/// AVERROR(EAGAIN).
int cav_error_eagain(void);
/// AVERROR_EOF.
int cav_error_eof(void);
/// AVERROR_INVALIDDATA.
int cav_error_invaliddata(void);
/// AVERROR_EXIT (returned when an interrupt callback aborts I/O).
int cav_error_exit(void);
/// AVERROR_DECODER_NOT_FOUND.
int cav_error_decoder_not_found(void);
/// AVERROR_ENCODER_NOT_FOUND.
int cav_error_encoder_not_found(void);
/// AVERROR(errnum) for a POSIX errno value.
int cav_error_from_errno(int errnum);
/// AVUNERROR(err): the errno value of a libav error made from one, else 0.
int cav_errno_of(int err);
/// AV_NOPTS_VALUE.
int64_t cav_nopts_value(void);
/// AV_TIME_BASE_Q.
AVRational cav_time_base_q(void);

/// av_strerror() into buf; always NUL-terminates.
void cav_error_string(int err, char *buf, size_t size);

/// Installs (once, process-wide) a log level of AV_LOG_ERROR and a log
/// callback that prints nothing and keeps
/// the last message at AV_LOG_ERROR or worse in a buffer local to the calling
/// thread, so an operation can quote libav's own words in its error.
void cav_log_install(void);
/// Forgets the calling thread's last captured message.
void cav_log_clear(void);
/// Copies the calling thread's last captured message (empty if none).
void cav_log_last(char *buf, size_t size);

/// An atomic int flag, set to cancel an operation. Allocated with
/// cav_flag_new, released with cav_flag_free.
typedef struct cav_flag cav_flag;
cav_flag *cav_flag_new(void);
void cav_flag_free(cav_flag *flag);
void cav_flag_set(cav_flag *flag);
int cav_flag_get(const cav_flag *flag);
/// Points fmt->interrupt_callback at the flag: blocking libav I/O returns
/// AVERROR_EXIT once it is set.
void cav_flag_attach(cav_flag *flag, AVFormatContext *fmt);
/// An AVIOInterruptCB for avio_open2().
AVIOInterruptCB cav_flag_interrupt(cav_flag *flag);

/// Names the calling thread (at most 15 bytes are kept), so operation threads
/// show up as such in ps, top and debuggers.
void cav_thread_set_name(const char *name);

/// Copies the chapters of `in` into `out`, moved earlier by `offset`
/// (AV_TIME_BASE units). Returns 0 or a negative AVERROR.
int cav_copy_chapters(AVFormatContext *out, const AVFormatContext *in, int64_t offset);
/* Removes every chapter of a context. */
void cav_clear_chapters(AVFormatContext *s);
/* Appends a chapter (times in 1/1000 s) with a title (may be NULL). */
int cav_add_chapter(AVFormatContext *s, int64_t id, int64_t start_ms, int64_t end_ms, const char *title);

/// Copies a decoder's ASS subtitle header into an encoder (before avcodec_open2).
int cav_copy_subtitle_header(AVCodecContext *enc, const AVCodecContext *dec);

#endif
