#pragma once
// libcurl wrapped for Swift: curl_easy_setopt and curl_easy_getinfo are variadic, which Swift
// cannot call, so each argument type gets a typed helper.
#include <curl/curl.h>

static inline CURLcode mge_curl_set_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode mge_curl_set_offset(CURL *curl, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode mge_curl_set_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode mge_curl_set_pointer(CURL *curl, CURLoption option, void *value) {
    return curl_easy_setopt(curl, option, value);
}
typedef size_t (*mge_curl_write_function)(char *data, size_t size, size_t count, void *context);
static inline CURLcode mge_curl_set_write_function(CURL *curl, mge_curl_write_function f) {
    return curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, f);
}
typedef int (*mge_curl_progress_function)(void *context, curl_off_t total, curl_off_t now, curl_off_t utotal, curl_off_t unow);
static inline CURLcode mge_curl_set_progress_function(CURL *curl, mge_curl_progress_function f) {
    return curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, f);
}
static inline CURLcode mge_curl_response_code(CURL *curl, long *code) {
    return curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, code);
}
static inline CURLcode mge_curl_content_length(CURL *curl, curl_off_t *length) {
    return curl_easy_getinfo(curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, length);
}
