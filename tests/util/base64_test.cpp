#include "sluice/util/base64.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

using namespace std::string_literals;

TEST(Base64, EncodesWithPaddingForEachRemainder) {
    EXPECT_EQ(base64Encode(""), "");
    EXPECT_EQ(base64Encode("f"), "Zg==");    // 2 padding characters
    EXPECT_EQ(base64Encode("fo"), "Zm8=");   // 1
    EXPECT_EQ(base64Encode("foo"), "Zm9v");  // 0
    EXPECT_EQ(base64Encode("foob"), "Zm9vYg==");
    EXPECT_EQ(base64Encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64Encode("user:pa ss"), "dXNlcjpwYSBzcw==");
    EXPECT_EQ(base64Encode("\xfb\xff\xbf"s), "+/+/");  // the two last characters of the alphabet
}

TEST(Base64, DecodesEachPadding) {
    EXPECT_EQ(base64Decode(""), "");
    EXPECT_EQ(base64Decode("Zg=="), "f");
    EXPECT_EQ(base64Decode("Zm8="), "fo");
    EXPECT_EQ(base64Decode("Zm9v"), "foo");
    EXPECT_EQ(base64Decode("Zm9vYg=="), "foob");
    EXPECT_EQ(base64Decode("Zm9vYmE="), "fooba");
    EXPECT_EQ(base64Decode("Zm9vYmFy"), "foobar");
    EXPECT_EQ(base64Decode("+/+/"), "\xfb\xff\xbf"s);
    // Unused low bits of the last group are not checked, as in Go's StdEncoding.
    EXPECT_EQ(base64Decode("Zh=="), "f");
}

TEST(Base64, RoundTripsEveryByteAndEveryLength) {
    std::string all;
    for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
    for (std::size_t n = 0; n <= all.size(); ++n) {
        const std::string bytes = all.substr(all.size() - n);  // ends in 0xff, has NULs
        const std::string encoded = base64Encode(bytes);
        EXPECT_EQ(encoded.size(), (n + 2) / 3 * 4) << n;
        EXPECT_EQ(base64Decode(encoded), bytes) << n;
    }
    // A zero byte at the end is data, not padding.
    EXPECT_EQ(base64Decode(base64Encode("a\0"s)), "a\0"s);
    EXPECT_EQ(base64Decode(base64Encode("\0\0\0\0"s)), "\0\0\0\0"s);
}

TEST(Base64, RoundTripsInputsLargerThanOneChunk) {
    std::string big(3 * (1 << 20) + 7, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 % 251);
    EXPECT_EQ(base64Decode(base64Encode(big)), big);
}

TEST(Base64, RejectsMalformedInput) {
    for (const char* bad : {
             "Zg",        // no padding
             "Zg=",       // short padding
             "Zm9vY",     // not whole groups
             "Z===",      // three padding characters
             "====",      // padding only
             "Zg==Zg==",  // data after padding
             "Zm=v",      // '=' inside the data
             "Zm9*",      // outside the alphabet
             "Zm9-",      // URL-safe alphabet
             "Zm9_",
             "Zm9v\x01",  // control character (EVP_DecodeBlock would trim it)
         })
        EXPECT_EQ(base64Decode(bad), std::nullopt) << bad;
    EXPECT_EQ(base64Decode("Zm9v\0"s), std::nullopt);
}

TEST(Base64, WhitespaceIsRejectedUnlessSkipped) {
    for (const char* spaced :
         {"Zm9v\nYmFy", "Zm9vYmFy\n", " Zm9vYmFy", "Zm9v\r\nYmFy", "Zm9v\tYmFy"}) {
        EXPECT_EQ(base64Decode(spaced), std::nullopt) << spaced;
        EXPECT_EQ(base64Decode(spaced, Base64Whitespace::Skip), "foobar") << spaced;
    }
    // A PEM-style wrapped value, as kubeconfig *-data fields may be written.
    EXPECT_EQ(base64Decode("Zm9v\nYg==\n", Base64Whitespace::Skip), "foob");
    EXPECT_EQ(base64Decode("Zm9 vYg ==", Base64Whitespace::Skip), "foob");
    EXPECT_EQ(base64Decode(" \n", Base64Whitespace::Skip), "");
    EXPECT_EQ(base64Decode("Zm9v\nY", Base64Whitespace::Skip), std::nullopt);
}

}  // namespace
}  // namespace sluice
