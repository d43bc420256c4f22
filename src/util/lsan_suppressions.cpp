// LeakSanitizer suppressions for the binaries that talk HTTP through cpprestsdk (kubectl-sluice
// and the test binaries of the kube clients, controllers and servers; CMake object library
// sluice_lsan_suppressions). cpprestsdk finishes a request with continuations queued on its
// static thread pool; when the process exits while some are still queued (right after a failed
// request), LSan reports those pending tasks as leaks. Only allocations made through libcpprest
// (its tasks, streams and messages) are suppressed. Without a sanitizer nothing calls this.
extern "C" __attribute__((visibility("default"), used)) const char* __lsan_default_suppressions() {
    return "leak:libcpprest.so\n"
           "leak:web::http::details::http_msg_base::_complete\n";
}
