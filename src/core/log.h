/* Operator log: human-readable lines on stderr (or a file). Never pass a
 * secret value to these functions; name secrets instead. */
#ifndef SLUICE_CORE_LOG_H
#define SLUICE_CORE_LOG_H

typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO,
    SL_LOG_WARN,
    SL_LOG_ERROR,
} sl_log_level_t;

/* Set the minimum level printed (default: info). */
void sl_log_set_level(sl_log_level_t level);
/* Parse "debug", "info", "warn", "error"; returns -1 if unknown. */
int sl_log_level_parse(const char *s);
void sl_log(sl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define sl_debug(...) sl_log(SL_LOG_DEBUG, __VA_ARGS__)
#define sl_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)

#endif
