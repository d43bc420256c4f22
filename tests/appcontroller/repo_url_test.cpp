// Repository URL normalisation: the key for credentials, caches and webhook refreshes.
#include <gtest/gtest.h>

#include "sluice/appcontroller/controller.h"

using sluice::appcontroller::normaliseRepoUrl;

TEST(NormaliseRepoUrl, SpellingsOfOneRepositoryAgree) {
    EXPECT_EQ(normaliseRepoUrl("https://GitHub.com/org/repo.git"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("git@github.com:org/repo"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("ssh://git@github.com/org/repo"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("ssh://git@github.com:22/org/repo.git"), "github.com/org/repo");
    EXPECT_EQ(normaliseRepoUrl("https://user:token@github.com:443/org/repo/"),
              "github.com/org/repo");
}

TEST(NormaliseRepoUrl, KeepsWhatDistinguishesRepositories) {
    EXPECT_EQ(normaliseRepoUrl("http://127.0.0.1:8080/repo.git"), "127.0.0.1:8080/repo");
    EXPECT_NE(normaliseRepoUrl("https://github.com/Org/Repo"),
              normaliseRepoUrl("https://github.com/org/repo"))
        << "paths are case-sensitive";
    EXPECT_EQ(normaliseRepoUrl("file:///tmp/Repos/app.git"), "/tmp/Repos/app");
    EXPECT_NE(normaliseRepoUrl("https://github.com/org/repo"),
              normaliseRepoUrl("https://gitlab.com/org/repo"));
}
