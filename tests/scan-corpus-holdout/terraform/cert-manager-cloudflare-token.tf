resource "kubectl_manifest" "cloudflare_token" {
  yaml_body = <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: cloudflare-api-token
  namespace: cert-manager
type: Opaque
stringData:
  api-token: 36BCb9Ugk834Pas2ocLp7z4uHH82OSa220SdIDza
YAML

  depends_on = [helm_release.cert-manager]
}
