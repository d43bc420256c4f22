// LeakSanitizer suppressions for the kube test binaries. cpprestsdk finishes a request with
// continuations queued on its static thread pool; when the process exits while some are still
// queued (right after a failed request), LSan reports those pending tasks as leaks. Only
// allocations made through libcpprest (its tasks, streams and messages) are suppressed.
extern "C" __attribute__((visibility("default"), used)) const char* __lsan_default_suppressions() {
    return "leak:libcpprest.so\n"
           "leak:web::http::details::http_msg_base::_complete\n";
}
