#define _GNU_SOURCE
#include "CAVShims.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

int cav_error_eagain(void) { return AVERROR(EAGAIN); }
int cav_error_eof(void) { return AVERROR_EOF; }
int cav_error_invaliddata(void) { return AVERROR_INVALIDDATA; }
int cav_error_exit(void) { return AVERROR_EXIT; }
int cav_error_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
int cav_error_encoder_not_found(void) { return AVERROR_ENCODER_NOT_FOUND; }
int cav_error_from_errno(int errnum) { return AVERROR(errnum); }
int cav_errno_of(int err) {
    int e = AVUNERROR(err);
    return (e > 0 && e < 4096) ? e : 0;
}
int64_t cav_nopts_value(void) { return AV_NOPTS_VALUE; }
AVRational cav_time_base_q(void) { return AV_TIME_BASE_Q; }

void cav_error_string(int err, char *buf, size_t size) {
    if (size == 0) return;
    if (av_strerror(err, buf, size) < 0) {
        snprintf(buf, size, "libav error %d", err);
    }
    buf[size - 1] = '\0';
}

/* ---- log capture ---- */

static _Thread_local char cav_last_log[512];
static pthread_once_t cav_log_once = PTHREAD_ONCE_INIT;

static void cav_log_callback(void *avcl, int level, const char *fmt, va_list vl) {
    if (level > AV_LOG_ERROR) return;
    char line[512];
    int print_prefix = 0;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
    if (n == 0) return;
    memcpy(cav_last_log, line, n + 1);
}

static void cav_log_do_install(void) {
    /* Messages below errors are dropped before libav formats them. */
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(cav_log_callback);
}

void cav_log_install(void) { pthread_once(&cav_log_once, cav_log_do_install); }
void cav_log_clear(void) { cav_last_log[0] = '\0'; }
void cav_log_last(char *buf, size_t size) {
    if (size == 0) return;
    strncpy(buf, cav_last_log, size - 1);
    buf[size - 1] = '\0';
}

/* ---- cancellation flag ---- */

struct cav_flag { atomic_int value; };

cav_flag *cav_flag_new(void) {
    cav_flag *f = malloc(sizeof *f);
    if (f) atomic_init(&f->value, 0);
    return f;
}
void cav_flag_free(cav_flag *flag) { free(flag); }
void cav_flag_set(cav_flag *flag) { atomic_store_explicit(&flag->value, 1, memory_order_release); }
int cav_flag_get(const cav_flag *flag) {
    return atomic_load_explicit(&((cav_flag *)flag)->value, memory_order_acquire);
}

static int cav_flag_cb(void *opaque) { return cav_flag_get((const cav_flag *)opaque); }

void cav_flag_attach(cav_flag *flag, AVFormatContext *fmt) {
    fmt->interrupt_callback.callback = cav_flag_cb;
    fmt->interrupt_callback.opaque = flag;
}

AVIOInterruptCB cav_flag_interrupt(cav_flag *flag) {
    AVIOInterruptCB cb = { cav_flag_cb, flag };
    return cb;
}

/* ---- chapters and subtitle headers ---- */

int cav_copy_chapters(AVFormatContext *out, const AVFormatContext *in, int64_t offset) {
    for (unsigned i = 0; i < in->nb_chapters; i++) {
        const AVChapter *ic = in->chapters[i];
        int64_t off = av_rescale_q(offset, AV_TIME_BASE_Q, ic->time_base);
        AVChapter *c = av_mallocz(sizeof *c);
        if (!c) return AVERROR(ENOMEM);
        c->id = ic->id;
        c->time_base = ic->time_base;
        c->start = ic->start - off < 0 ? 0 : ic->start - off;
        c->end = ic->end - off < c->start ? c->start : ic->end - off;
        if (av_dict_copy(&c->metadata, ic->metadata, 0) < 0) {
            av_dict_free(&c->metadata);
            av_free(c);
            return AVERROR(ENOMEM);
        }
        AVChapter **tmp = av_realloc_array(out->chapters, out->nb_chapters + 1, sizeof *tmp);
        if (!tmp) {
            av_dict_free(&c->metadata);
            av_free(c);
            return AVERROR(ENOMEM);
        }
        out->chapters = tmp;
        out->chapters[out->nb_chapters++] = c;
    }
    return 0;
}

void cav_clear_chapters(AVFormatContext *s) {
    for (unsigned i = 0; i < s->nb_chapters; i++) {
        av_dict_free(&s->chapters[i]->metadata);
        av_freep(&s->chapters[i]);
    }
    av_freep(&s->chapters);
    s->nb_chapters = 0;
}

int cav_add_chapter(AVFormatContext *s, int64_t id, int64_t start_ms, int64_t end_ms, const char *title) {
    AVChapter *c = av_mallocz(sizeof *c);
    if (!c) return AVERROR(ENOMEM);
    c->id = id;
    c->time_base = (AVRational){1, 1000};
    c->start = start_ms;
    c->end = end_ms;
    if (title && av_dict_set(&c->metadata, "title", title, 0) < 0) {
        av_free(c);
        return AVERROR(ENOMEM);
    }
    AVChapter **tmp = av_realloc_array(s->chapters, s->nb_chapters + 1, sizeof *tmp);
    if (!tmp) {
        av_dict_free(&c->metadata);
        av_free(c);
        return AVERROR(ENOMEM);
    }
    s->chapters = tmp;
    s->chapters[s->nb_chapters++] = c;
    return 0;
}

int cav_copy_subtitle_header(AVCodecContext *enc, const AVCodecContext *dec) {
    if (!dec->subtitle_header || dec->subtitle_header_size <= 0) return 0;
    enc->subtitle_header = av_mallocz(dec->subtitle_header_size + 1);
    if (!enc->subtitle_header) return AVERROR(ENOMEM);
    memcpy(enc->subtitle_header, dec->subtitle_header, dec->subtitle_header_size);
    enc->subtitle_header_size = dec->subtitle_header_size;
    return 0;
}

void cav_thread_set_name(const char *name) {
#if defined(__linux__)
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
#elif defined(__APPLE__)
    pthread_setname_np(name);
#endif
}
