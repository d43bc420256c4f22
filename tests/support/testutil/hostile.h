#pragma once
// Hostile input that several tests feed to the parsers and the controller.
#include <string>

namespace sluice::testing {

// The "billion laughs" of issue 10 (573 bytes as a manifest): `a` lists 10 "lol"s and each next
// key lists 10 aliases of the one before, so `k` stands for 10^10 of them. Each line starts
// with `indent`.
inline std::string yamlAliasBomb(const std::string& indent = "") {
    std::string text = indent + "a: &a [";
    for (int i = 0; i < 10; ++i) text += i ? ", \"lol\"" : "\"lol\"";
    text += "]\n";
    for (char key = 'b'; key <= 'k'; ++key) {
        std::string previous(1, static_cast<char>(key - 1));
        text += indent + std::string(1, key) + ": &" + key + " [";
        for (int i = 0; i < 10; ++i) text += (i ? ", *" : "*") + previous;
        text += "]\n";
    }
    return text;
}

}  // namespace sluice::testing
