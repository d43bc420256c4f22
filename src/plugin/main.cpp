// kubectl-sluice: installed beside kubectl, it makes `kubectl sluice ...` work.
#include <iostream>
#include <string>
#include <vector>

#include "run.h"

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    auto env = sluice::plugin::defaultEnvironment(std::cout, std::cerr);
    int code = sluice::plugin::run(args, env);
    std::cout.flush();
    return code;
}
