// LeakSanitizer suppressions for the binaries that talk HTTP through cpprestsdk (kubectl-sluice,
// sluice-controller and the test binaries of the kube clients, controllers and servers; CMake
// object libraries sluice_lsan_suppressions and sluice_controller_lsan_suppressions).
// cpprestsdk finishes a request with continuations queued on its static thread pool; when the
// process exits while some are still queued (right after a failed request), LSan reports those
// pending tasks as leaks. Only allocations made through libcpprest (its tasks, streams and
// messages) are suppressed. Without a sanitizer nothing calls this.
//
// SLUICE_LSAN_OPENSSL_AT_EXIT (the controller only): the controller runs cpprest's pool with a few
// threads, so at SIGTERM some of those continuations still hold TLS streams. LSan's fast unwinder
// stops inside libcrypto (built without frame pointers), so their stacks never reach libcpprest
// and only a libcrypto rule matches them. The unit tests of Sluice's own OpenSSL code (hashes,
// HMAC, TLS setup) link the narrower rules, so a leak there is still reported.
extern "C" __attribute__((visibility("default"), used)) const char* __lsan_default_suppressions() {
    return "leak:libcpprest.so\n"
           "leak:web::http::details::http_msg_base::_complete\n"
#ifdef SLUICE_LSAN_OPENSSL_AT_EXIT
           "leak:libcrypto.so\n"
           "leak:libssl.so\n"
#endif
        ;
}
