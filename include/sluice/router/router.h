#pragma once
// Flagger's traffic routers as pure object builders: from a RouteContext and the weights to
// express, each router builds the objects that route the apex traffic (HTTPRoute,
// VirtualService, canary Ingress, or the apex Service's selector), and reads the weights back
// from the live object. Nothing here talks to the cluster: see apply.h for that.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/kube/types.h"
#include "sluice/router/context.h"

namespace sluice::router {

class Router {
  public:
    virtual ~Router() = default;

    // The provider name as spec.provider spells it ("gatewayapi:v1", "istio", "nginx"...).
    virtual std::string provider() const = 0;

    // Throws RouterError when the Canary cannot be routed by this provider at all (e.g. no
    // gatewayRefs for Gateway API), so the controller can report it before touching anything.
    virtual void checkSpec(const RouteContext& ctx) const = 0;
    // Throws RouterError for weights this provider cannot express.
    virtual void checkWeights(const RouteContext& ctx, const Weights& weights) const;

    // Objects that must be read from the cluster before building (NGINX: the user's Ingress).
    virtual std::vector<ObjectRef> inputs(const RouteContext&) const { return {}; }

    // The routing objects for these weights: apiVersion, kind, metadata (name, namespace,
    // labels, annotations) and spec; owner references are added by the apply layer. `inputs`
    // holds the live objects named by inputs(), in that order. Calls checkSpec and
    // checkWeights first (RouterError).
    virtual std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                            const std::vector<kube::Object>& inputs = {}) const = 0;

    // The object whose live state carries the weights.
    virtual ObjectRef weightsObject(const RouteContext& ctx) const = 0;
    // The weights the live weights object routes by. Throws RouterError when the object is not
    // in a shape this router writes (e.g. it no longer routes to both Services).
    virtual Weights readWeights(const RouteContext& ctx, const kube::Object& live) const = 0;

    // True when build() returns the apex Service itself (the Kubernetes router switches its
    // selector); otherwise the apex Service always selects the primary's pods.
    virtual bool routesApexService() const { return false; }
};

// Gateway API HTTPRoute `<apex>` attached to service.gatewayRefs, one weighted rule with
// backendRefs to `<apex>-primary` and `<apex>-canary` (plus, for A/B testing, a header-matched
// weighted rule before a primary-only rule).
class GatewayApiRouter final : public Router {
  public:
    explicit GatewayApiRouter(std::string apiVersion = "gateway.networking.k8s.io/v1");
    std::string provider() const override;
    void checkSpec(const RouteContext& ctx) const override;
    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs = {}) const override;
    ObjectRef weightsObject(const RouteContext& ctx) const override;
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override;

  private:
    std::string apiVersion_;
};

// Istio VirtualService `<apex>` (hosts + the apex host, gateways or "mesh") with weighted
// destinations `<apex>-primary`/`<apex>-canary`, and DestinationRules for both hosts.
class IstioRouter final : public Router {
  public:
    // networking.istio.io/v1 is the storage version since Istio 1.22; v1beta1 (Flagger's) and
    // v1alpha3 are served as well.
    explicit IstioRouter(std::string apiVersion = "networking.istio.io/v1");
    std::string provider() const override { return "istio"; }
    void checkSpec(const RouteContext& ctx) const override;
    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs = {}) const override;
    ObjectRef weightsObject(const RouteContext& ctx) const override;
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override;

  private:
    std::string apiVersion_;
};

// NGINX ingress: Ingress `<ingressRef.name>-canary`, a copy of spec.ingressRef whose backends
// to the apex Service point at `<apex>-canary`, with the canary annotations.
class NginxRouter final : public Router {
  public:
    explicit NginxRouter(std::string annotationPrefix = "nginx.ingress.kubernetes.io");
    std::string provider() const override { return "nginx"; }
    void checkSpec(const RouteContext& ctx) const override;
    void checkWeights(const RouteContext& ctx, const Weights& weights) const override;
    std::vector<ObjectRef> inputs(const RouteContext& ctx) const override;
    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs = {}) const override;
    ObjectRef weightsObject(const RouteContext& ctx) const override;
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override;

  private:
    std::string annotation(std::string_view suffix) const;
    // The canary Ingress's annotations: the source's (`source`: its metadata.annotations)
    // without canary ones, plus the weight or the A/B header and cookie selectors.
    nlohmann::json canaryAnnotations(const RouteContext& ctx, const nlohmann::json& source,
                                     const Weights& weights) const;
    std::string prefix_;
};

// Plain Kubernetes Services (blue-green only): the apex Service selects the primary's pods
// (100/0) or the canary's (0/100). No other split exists.
class KubernetesRouter final : public Router {
  public:
    std::string provider() const override { return "kubernetes"; }
    void checkSpec(const RouteContext& ctx) const override;
    void checkWeights(const RouteContext& ctx, const Weights& weights) const override;
    std::vector<kube::Object> build(const RouteContext& ctx, const Weights& weights,
                                    const std::vector<kube::Object>& inputs = {}) const override;
    ObjectRef weightsObject(const RouteContext& ctx) const override;
    Weights readWeights(const RouteContext& ctx, const kube::Object& live) const override;
    bool routesApexService() const override { return true; }
};

// The router of a provider in the table of providers.h. Throws RouterError for any other.
std::unique_ptr<Router> makeRouter(std::string_view provider);
// spec.provider, or `fallback` when the Canary names none (Flagger uses its -mesh-provider).
std::string providerOf(const canaryengine::CanarySpec& spec, std::string_view fallback);

// The ClusterIP Services Flagger generates. Ports: service.port, targetPort (default: port),
// name portName (default "http"), appProtocol. Selectors on ctx.selector: the primary Service
// selects `label: value-primary`, the canary Service `label: value`, the apex Service either.
enum class ServiceRole { Apex, Primary, Canary };
enum class ApexSelects { Primary, Canary };
kube::Object buildService(const RouteContext& ctx, ServiceRole role,
                          ApexSelects apexSelects = ApexSelects::Primary);
// Apex, primary and canary Services, the apex selecting the primary.
std::vector<kube::Object> buildServices(const RouteContext& ctx);

// Everything to apply for these weights, in apply order: the Services (the apex one from the
// router when it routes it), then the router's objects.
std::vector<kube::Object> desiredObjects(const Router& router, const RouteContext& ctx,
                                         const Weights& weights,
                                         const std::vector<kube::Object>& inputs = {});

}  // namespace sluice::router
