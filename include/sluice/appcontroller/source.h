#pragma once
// The repository helpers the controller shares with `kubectl sluice` live in the source module
// (sluice/source/repository.h, sluice/source/service.h); the controller's status code names
// redactedSources() unqualified.
#include "sluice/source/repository.h"

namespace sluice::appcontroller {

using source::redactedSources;

}  // namespace sluice::appcontroller
