// AppProjects as the controller reads them: from the informer on the control namespace, with
// the built-in `default` project (everything allowed) while no AppProject of that name exists.
#include <spdlog/spdlog.h>

#include "impl.h"
#include "util.h"

namespace sluice::appcontroller {

ApplicationController::Impl::ProjectLookup ApplicationController::Impl::lookupProject(
    const std::string& requested) {
    const std::string name = requested.empty() ? appengine::kDefaultProject : requested;
    ProjectLookup out;
    auto builtIn = [&] {
        out.state = ProjectLookup::State::Found;
        out.parsed.project = appengine::builtInDefaultProject();
        return out;
    };
    cache::Informer* projects = base.projects;
    if (!projects) {
        out.state = ProjectLookup::State::NotReady;
        out.error = "waiting for the AppProject cache";
        return out;
    }
    if (!projects->hasSynced()) {
        // No AppProject CRD (an installation from before projects) or no permission to read
        // them: only the built-in default project exists. Anything else is a cache that is
        // still filling, and deciding now could apply what a project forbids.
        const auto error = projects->lastError();
        if (!error || (error->code != 404 && error->code != 403)) {
            out.state = ProjectLookup::State::NotReady;
            out.error = "waiting for the AppProject cache";
            return out;
        }
        if (name == appengine::kDefaultProject) return builtIn();
        out.error = appengine::missingProject(name) +
                    " (AppProjects cannot be read: " + error->message + ")";
        return out;
    }
    const cache::ObjectPtr obj = projects->store().get(opts.controlNamespace, name);
    if (!obj) {
        if (name == appengine::kDefaultProject) return builtIn();
        out.error = appengine::missingProject(name);
        return out;
    }
    out.state = ProjectLookup::State::Found;
    out.parsed = appengine::parseProject(*obj);
    out.fieldsWithoutEffect = appengine::unimplementedProjectFieldsIn(*obj);
    return out;
}

void ApplicationController::Impl::enqueueProjectApps(cache::Informer& apps, workqueue::Gate& gate,
                                                     const std::string& controlNamespace,
                                                     const json& project) {
    if (kube::namespaceOf(project) != controlNamespace) return;
    const std::string name = kube::nameOf(project);
    for (const auto& a : apps.store().list()) {
        std::string p = detail::strAt(*a, "/spec/project"_json_pointer);
        if (p.empty()) p = appengine::kDefaultProject;
        if (p == name) gate.add(kube::namespaceOf(*a) + "/" + kube::nameOf(*a));
    }
}

}  // namespace sluice::appcontroller
