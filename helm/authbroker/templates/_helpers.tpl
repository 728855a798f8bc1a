{{/*
Names, labels and the pieces the server Deployment and the migration Job share:
the config file, the secret data, the mounted files and the environment.
*/}}

{{/* Chart name, truncated to a DNS label. */}}
{{- define "authbroker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name plus chart name, unless the release name already contains it. */}}
{{- define "authbroker.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the migration hook's resources. */}}
{{- define "authbroker.migrateName" -}}
{{- printf "%s-migrate" (include "authbroker.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/* Name of the reseal hook Job. */}}
{{- define "authbroker.resealName" -}}
{{- printf "%s-reseal" (include "authbroker.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/* Label that admits a client pod through the NetworkPolicy. */}}
{{- define "authbroker.clientLabel" -}}
{{- printf "%s-client" (include "authbroker.fullname" . | trunc 56 | trimSuffix "-") }}
{{- end }}

{{/*
Whether the NetworkPolicy admits pods by the client label: allowClientLabel,
unless allowNamespace already admits every pod of the namespace. "true" or empty.
*/}}
{{- define "authbroker.networkPolicyClientLabel" -}}
{{- $np := .Values.networkPolicy }}
{{- if and $np.allowClientLabel (not (and $np.allowNamespace (not $np.namespacePodSelector))) }}true{{ end }}
{{- end }}

{{- define "authbroker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "authbroker.labels" -}}
helm.sh/chart: {{ include "authbroker.chart" . }}
app.kubernetes.io/name: {{ include "authbroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: authbroker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector of the server pods. The component label keeps the migration and test
pods out of the Service, the PodDisruptionBudget and the NetworkPolicy.
*/}}
{{- define "authbroker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "authbroker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "authbroker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "authbroker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "authbroker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Where the config file and the secret files are mounted. */}}
{{- define "authbroker.configDir" -}}/etc/authbroker/config{{- end }}
{{- define "authbroker.configPath" -}}/etc/authbroker/config/authbroker.toml{{- end }}
{{- define "authbroker.secretsDir" -}}/etc/authbroker/secrets{{- end }}
{{/* The tls.secretName Secret, mounted whole (no subPath) so the kubelet updates renewed files. */}}
{{- define "authbroker.tlsDir" -}}/etc/authbroker/tls{{- end }}

{{/* Secret keys (and file names under secretsDir). */}}
{{- define "authbroker.callerTokenKey" -}}caller-{{ . }}-token{{- end }}
{{/* Key of a caller's n-th token (n from 2: the first is callerTokenKey); takes (list NAME n). */}}
{{- define "authbroker.callerExtraTokenKey" -}}caller-{{ index . 0 }}-token-{{ index . 1 }}{{- end }}
{{/*
Whether a caller has a main token key: always, unless it is known by its client
certificate (spiffeIds, dnsNames) and gives no token. "true" or empty.
*/}}
{{- define "authbroker.callerHasToken" -}}
{{- if or .token (not (or .spiffeIds .dnsNames)) }}true{{ end }}
{{- end }}
{{- define "authbroker.clientSecretKey" -}}provider-{{ . }}-client-secret{{- end }}
{{/* Key of the key with this id in secrets.encryptionKeys (a single secrets.encryptionKey is `encryption-key`). */}}
{{- define "authbroker.encryptionKeyKey" -}}encryption-key-{{ . }}{{- end }}
{{/*
The Secret keys holding the encryption key(s), one a line: `encryption-key` for
secrets.encryptionKey, else `encryption-key-<id>` for each key of the ring.
*/}}
{{- define "authbroker.encryptionKeyKeys" -}}
{{- if .Values.secrets.encryptionKeys }}
{{- range .Values.secrets.encryptionKeys }}
{{ include "authbroker.encryptionKeyKey" .id }}
{{- end }}
{{- else -}}
encryption-key
{{- end }}
{{- end }}
{{/* The id new values are sealed with: secrets.activeEncryptionKeyId, or the ring's only key. */}}
{{- define "authbroker.activeEncryptionKeyId" -}}
{{- .Values.secrets.activeEncryptionKeyId | default (index .Values.secrets.encryptionKeys 0).id }}
{{- end }}

{{/*
Checks that need more than one value, with a message naming what to set.
Included by every template that renders a workload, so any render fails early.
*/}}
{{- define "authbroker.validate" -}}
{{- $v := .Values }}
{{- $ring := $v.secrets.encryptionKeys | default list }}
{{- if and $v.secrets.encryptionKey $ring }}
  {{- fail "secrets.encryptionKey and secrets.encryptionKeys are both set: give one key, or the ring. To rotate, move the current key into secrets.encryptionKeys as {id: <config.encryptionKeyId>, key: <it>} and empty secrets.encryptionKey" }}
{{- end }}
{{- if not $v.existingSecret }}
  {{- if not (or $v.secrets.encryptionKey $ring) }}
    {{- fail "secrets.encryptionKey is required: set it to the output of `authbroker generate-key` (base64 of 32 bytes; keep a copy, losing it makes every stored token unreadable), or give a key ring in secrets.encryptionKeys, or set existingSecret" }}
  {{- end }}
  {{- if and (not $v.database.existingSecret.name) (not $v.database.url) }}
    {{- fail "database.url is required: postgres://user:password@host:5432/dbname (or set database.existingSecret.name, or existingSecret)" }}
  {{- end }}
{{- end }}
{{- $ids := dict }}
{{- $keyIds := dict }}
{{- range $i, $k := $ring }}
  {{- if hasKey $ids $k.id }}
    {{- fail (printf "secrets.encryptionKeys[%d].id: %q is in the ring twice" $i $k.id) }}
  {{- end }}
  {{- $_ := set $ids $k.id true }}
  {{- if and (not $v.existingSecret) (not $k.key) }}
    {{- fail (printf "secrets.encryptionKeys[%d].key is required for key %q: the output of `authbroker generate-key` (or set existingSecret with key %s)" $i $k.id (include "authbroker.encryptionKeyKey" $k.id)) }}
  {{- end }}
  {{- if and $k.key (not $v.existingSecret) }}
    {{- if hasKey $keyIds $k.key }}
      {{- fail (printf "secrets.encryptionKeys[%d].key: key %q is the same key as %q; a new key comes from `authbroker generate-key`" $i $k.id (get $keyIds $k.key)) }}
    {{- end }}
    {{- $_ := set $keyIds $k.key $k.id }}
  {{- end }}
{{- end }}
{{- with $v.secrets.activeEncryptionKeyId }}
  {{- if not $ring }}
    {{- fail "secrets.activeEncryptionKeyId names a key of secrets.encryptionKeys, which is empty (a single secrets.encryptionKey has the id config.encryptionKeyId)" }}
  {{- end }}
  {{- if not (hasKey $ids .) }}
    {{- fail (printf "secrets.activeEncryptionKeyId: %q is not the id of a key in secrets.encryptionKeys (%s)" . (keys $ids | sortAlpha | join ", ")) }}
  {{- end }}
{{- else }}
  {{- if gt (len $ring) 1 }}
    {{- fail (printf "secrets.activeEncryptionKeyId is required: secrets.encryptionKeys holds %d keys (%s), so name the one new values are sealed with (the old one until every replica has the new key, then the new one)" (len $ring) (keys $ids | sortAlpha | join ", ")) }}
  {{- end }}
{{- end }}
{{- if and $v.reseal.enabled (lt (len $ring) 2) }}
  {{- fail "reseal.enabled: re-sealing moves stored secrets from older keys of secrets.encryptionKeys to the active one, and there is no older key; enable it while the ring holds the old and the new (active) key, and disable it again when the old key leaves the ring" }}
{{- end }}
{{- if not $v.callers }}
  {{- fail "callers: at least one caller {name, token} is required; authbroker refuses unauthenticated calls on a non-loopback address" }}
{{- end }}
{{- $seen := dict }}
{{- range $i, $c := $v.callers }}
  {{- if hasKey $seen $c.name }}
    {{- fail (printf "callers[%d].name: %q is configured twice" $i $c.name) }}
  {{- end }}
  {{- $_ := set $seen $c.name true }}
  {{- $identities := or $c.spiffeIds $c.dnsNames }}
  {{- if and $identities (not (and $v.tls.enabled $v.tls.clientCA)) }}
    {{- fail (printf "callers[%d]: spiffeIds and dnsNames of caller %q are checked against verified client certificates: set tls.enabled and tls.clientCA (mTLS), or give the caller a token instead" $i $c.name) }}
  {{- end }}
  {{- if and (not $v.existingSecret) (not $c.token) (not $identities) }}
    {{- fail (printf "callers[%d].token is required for caller %q unless it has spiffeIds or dnsNames with tls.clientCA (or set existingSecret with key %s)" $i $c.name (include "authbroker.callerTokenKey" $c.name)) }}
  {{- end }}
  {{- $policy := $c.policy | default dict }}
  {{- $redirectUris := list }}
  {{- range $id, $p := $v.providers }}
    {{- if or (not (hasKey $policy "providers")) (has $id ($policy.providers | default list)) }}
      {{- $redirectUris = concat $redirectUris $p.redirectUris }}
    {{- end }}
  {{- end }}
  {{- range $policy.providers }}
    {{- if not (hasKey $v.providers .) }}
      {{- fail (printf "callers[%d].policy.providers: %q is not a key of providers" $i .) }}
    {{- end }}
  {{- end }}
  {{- range $policy.redirectUris }}
    {{- if not (has . $redirectUris) }}
      {{- fail (printf "callers[%d].policy.redirectUris: %q is not among the redirectUris of the providers caller %q may use" $i . $c.name) }}
    {{- end }}
  {{- end }}
{{- end }}
{{- if and $v.tls.enabled (not $v.tls.secretName) }}
  {{- fail "tls.secretName is required when tls.enabled is true: the name of a kubernetes.io/tls Secret (tls.crt, tls.key, and ca.crt for tls.clientCA), e.g. the secretName of a cert-manager Certificate" }}
{{- end }}
{{- if and $v.tls.clientCA (not $v.tls.enabled) }}
  {{- fail "tls.clientCA requires tls.enabled: client certificates are verified in the TLS handshake" }}
{{- end }}
{{- if eq (int $v.config.healthPort) (int $v.config.port) }}
  {{- fail "config.healthPort must differ from config.port: the health listener is a second, plaintext listener" }}
{{- end }}
{{- range $id, $p := $v.providers }}
  {{- if and (not $v.existingSecret) (not $p.clientSecret) }}
    {{- fail (printf "providers.%s.clientSecret is required (or set existingSecret with key %s)" $id (include "authbroker.clientSecretKey" $id)) }}
  {{- end }}
{{- end }}
{{- $metricsPort := $v.config.metricsPort }}
{{- if not (kindIs "invalid" $metricsPort) }}
  {{- if or (eq (int $metricsPort) (int $v.config.port)) (eq (int $metricsPort) (int $v.config.healthPort)) }}
    {{- fail (printf "config.metricsPort must differ from config.port (%d) and config.healthPort (%d): the metrics listener is a listener of its own" (int $v.config.port) (int $v.config.healthPort)) }}
  {{- end }}
  {{- if eq (int $metricsPort) (int $v.service.port) }}
    {{- fail (printf "config.metricsPort must differ from service.port (%d): the Service exposes both" (int $v.service.port)) }}
  {{- end }}
{{- else if $v.serviceMonitor.enabled }}
  {{- fail "serviceMonitor.enabled: there is no metrics port to scrape; set config.metricsPort (e.g. 9464) so authbroker serves /metrics (metrics_listen)" }}
{{- end }}
{{- if and $v.otel.enabled (not $v.otel.endpoint) }}
  {{- fail "otel.endpoint is required when otel.enabled is true (e.g. http://otel-collector.observability:4317)" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
  {{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- $graceMs := mul (int (include "authbroker.shutdownGraceSecs" .)) 1000 }}
{{- if lt $graceMs (int $v.config.http.timeoutMs) }}
  {{- fail (printf "terminationGracePeriodSeconds must be at least preStopSleepSeconds + %d s + config.http.timeoutMs: a refresh cut off at shutdown after the provider rotated the token loses the connection" (include "authbroker.exitMarginSecs" . | int)) }}
{{- end }}
{{- end }}

{{/*
After SIGTERM authbroker lets in-flight calls run for shutdown_grace_secs, then
exits. The preStop sleep and that grace both count against the pod's
terminationGracePeriodSeconds, and closing the database and flushing telemetry
takes a moment more, so the grace is what remains after the sleep and a margin.
*/}}
{{- define "authbroker.exitMarginSecs" -}}3{{- end }}
{{- define "authbroker.shutdownGraceSecs" -}}
{{- sub (sub (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) (int (include "authbroker.exitMarginSecs" .)) }}
{{- end }}

{{/*
The TOML config file. Strings, lists, booleans and fractional numbers go
through toJson: a JSON string, array of strings, boolean or number is also a
valid TOML one; keys read as integers go through int64.
*/}}
{{- define "authbroker.config" -}}
{{- $v := .Values }}
{{- $c := $v.config }}
{{- $secrets := include "authbroker.secretsDir" . -}}
# authbroker configuration rendered by the {{ .Chart.Name }} chart {{ .Chart.Version }};
# the keys are documented in authbroker's README. Secrets are files mounted
# from a Secret; database_url comes from AUTHBROKER_DATABASE_URL.
listen = {{ printf "%s:%d" $c.listenAddress (int $c.port) | toJson }}
health_listen = {{ printf "%s:%d" $c.listenAddress (int $c.healthPort) | toJson }}
{{- if not (kindIs "invalid" $c.metricsPort) }}
metrics_listen = {{ printf "%s:%d" $c.listenAddress (int $c.metricsPort) | toJson }}
{{- end }}
migrate_on_start = false
log_format = {{ $c.logFormat | toJson }}
state_ttl_secs = {{ int64 $c.stateTtlSecs }}
{{- with $v.secrets.encryptionKeys }}
encryption_keys = [
{{- range . }}
  { id = {{ .id | toJson }}, key_file = {{ printf "%s/%s" $secrets (include "authbroker.encryptionKeyKey" .id) | toJson }} },
{{- end }}
]
active_encryption_key_id = {{ include "authbroker.activeEncryptionKeyId" $ | toJson }}
{{- else }}
encryption_key_file = {{ printf "%s/encryption-key" $secrets | toJson }}
encryption_key_id = {{ $c.encryptionKeyId | toJson }}
{{- end }}
refresh_window_secs = {{ int64 $c.refreshWindowSecs }}
refresh_interval_secs = {{ int64 $c.refreshIntervalSecs }}
token_cache_ttl_ms = {{ int64 $c.tokenCacheTtlMs }}
token_cache_capacity = {{ int64 $c.tokenCacheCapacity }}
health_check_interval_ms = {{ int64 $c.healthCheckIntervalMs }}
usage_retention_days = {{ int64 $c.usageRetentionDays }}
shutdown_grace_secs = {{ include "authbroker.shutdownGraceSecs" . }}

[http]
connect_timeout_ms = {{ int64 $c.http.connectTimeoutMs }}
timeout_ms = {{ int64 $c.http.timeoutMs }}
max_response_bytes = {{ int64 $c.http.maxResponseBytes }}
{{- if $v.tls.enabled }}
{{- $tlsDir := include "authbroker.tlsDir" . }}

[tls]
cert_file = {{ printf "%s/tls.crt" $tlsDir | toJson }}
key_file = {{ printf "%s/tls.key" $tlsDir | toJson }}
{{- if $v.tls.clientCA }}
client_ca_file = {{ printf "%s/ca.crt" $tlsDir | toJson }}
{{- end }}
reload_interval_secs = {{ int64 $v.tls.reloadIntervalSecs }}
{{- end }}
{{- /* values key, TOML key; rendered in this order when set */}}
{{- $limits := list
  (list "maxConnections" "max_connections")
  (list "handshakeTimeoutMs" "handshake_timeout_ms")
  (list "idleTimeoutSecs" "idle_timeout_secs")
  (list "keepaliveIntervalSecs" "keepalive_interval_secs")
  (list "keepaliveTimeoutSecs" "keepalive_timeout_secs")
  (list "maxConcurrentStreams" "max_concurrent_streams")
  (list "maxConnectionAgeSecs" "max_connection_age_secs")
  (list "maxConnectionAgeGraceSecs" "max_connection_age_grace_secs")
  (list "requestTimeoutSecs" "request_timeout_secs")
  (list "maxInFlight" "max_in_flight")
  (list "maxMessageBytes" "max_message_bytes") }}
{{- $server := $v.server | default dict }}
{{- $serverSet := list }}
{{- range $limits }}
{{- if not (kindIs "invalid" (index $server (index . 0))) }}
{{- $serverSet = append $serverSet . }}
{{- end }}
{{- end }}
{{- with $serverSet }}

[server]
{{- range . }}
{{ index . 1 }} = {{ index $server (index . 0) | int64 }}
{{- end }}
{{- end }}
{{- /* values key, TOML key, whether a whole number; rendered in this order when set */}}
{{- $rules := list
  (list "providers" "providers" false)
  (list "rpcs" "rpcs" false)
  (list "redirectUris" "redirect_uris" false)
  (list "scopes" "scopes" false)
  (list "allowPasswordGrant" "allow_password_grant" false)
  (list "maxCreditsPerCall" "max_credits_per_call" false)
  (list "maxCreditsPerDay" "max_credits_per_day" false)
  (list "rateLimitPerSecond" "rate_limit_per_second" false)
  (list "rateLimitBurst" "rate_limit_burst" true) }}
{{- range $v.callers }}
{{- $caller := . }}

[[callers]]
name = {{ .name | toJson }}
{{- if include "authbroker.callerHasToken" . }}
token_file = {{ printf "%s/%s" $secrets (include "authbroker.callerTokenKey" .name) | toJson }}
{{- end }}
{{- with .extraTokens }}
{{- $files := list }}
{{- range $i, $_ := . }}
{{- $files = append $files (printf "%s/%s" $secrets (include "authbroker.callerExtraTokenKey" (list $caller.name (add $i 2)))) }}
{{- end }}
tokens_file = {{ $files | toJson }}
{{- end }}
{{- with .spiffeIds }}
spiffe_ids = {{ . | toJson }}
{{- end }}
{{- with .dnsNames }}
dns_names = {{ . | toJson }}
{{- end }}
{{- $policy := .policy | default dict }}
{{- range $rules }}
{{- $key := index . 0 }}
{{- if and (hasKey $policy $key) (not (kindIs "invalid" (index $policy $key))) }}
{{ index . 1 }} = {{ if index . 2 }}{{ index $policy $key | int64 }}{{ else }}{{ index $policy $key | toJson }}{{ end }}
{{- end }}
{{- end }}
{{- end }}
{{- /* values key, TOML key; rendered in this order when present */}}
{{- $knobs := list
  (list "environment" "environment")
  (list "allowPasswordGrant" "allow_password_grant")
  (list "authorizeUrl" "authorize_url")
  (list "tokenUrl" "token_url")
  (list "userinfoUrl" "userinfo_url")
  (list "usageUrl" "usage_url")
  (list "revocationUrl" "revocation_url")
  (list "issuer" "issuer")
  (list "requireIss" "require_iss")
  (list "clientAuth" "client_auth")
  (list "bodyEncoding" "body_encoding")
  (list "scopeSeparator" "scope_separator")
  (list "defaultScopes" "default_scopes")
  (list "codeRedirectUri" "code_redirect_uri")
  (list "refreshRedirectUri" "refresh_redirect_uri")
  (list "defaultTokenLifetimeSecs" "default_token_lifetime_secs")
  (list "signUpResponseType" "sign_up_response_type")
  (list "pendingVerificationParam" "pending_verification_param")
  (list "passwordGrant" "password_grant")
  (list "userIdField" "user_id_field")
  (list "pkce" "pkce")
  (list "querySpace" "query_space")
  (list "usageWholeCredits" "usage_whole_credits") }}
{{- range $id, $p := $v.providers }}

[providers.{{ $id | toJson }}]
kind = {{ $p.kind | toJson }}
client_id = {{ $p.clientId | toJson }}
client_secret_file = {{ printf "%s/%s" $secrets (include "authbroker.clientSecretKey" $id) | toJson }}
redirect_uris = {{ $p.redirectUris | toJson }}
{{- range $knobs }}
{{- $key := index . 0 }}
{{- if and (hasKey $p $key) (not (kindIs "invalid" (index $p $key))) }}
{{- $value := index $p $key }}
{{ index . 1 }} = {{ if kindIs "float64" $value }}{{ int64 $value }}{{ else }}{{ $value | toJson }}{{ end }}
{{- end }}
{{- end }}
{{- with $p.extraAuthorizeParams }}

[providers.{{ $id | toJson }}.extra_authorize_params]
{{- range $name, $value := . }}
{{ $name | toJson }} = {{ $value | toString | toJson }}
{{- end }}
{{- end }}
{{- end }}
{{ end }}

{{/*
The Secret's data: the database URL (unless it comes from another Secret),
the encryption key (or each key of the ring), one token per caller and one
client secret per provider.
*/}}
{{- define "authbroker.secretData" -}}
{{- $v := .Values -}}
{{- if $v.secrets.encryptionKeys -}}
{{- range $i, $k := $v.secrets.encryptionKeys }}
{{- if $i }}
{{ end -}}
{{ include "authbroker.encryptionKeyKey" $k.id }}: {{ $k.key | b64enc | quote }}
{{- end }}
{{- else -}}
encryption-key: {{ $v.secrets.encryptionKey | b64enc | quote }}
{{- end }}
{{- if not $v.database.existingSecret.name }}
database-url: {{ $v.database.url | b64enc | quote }}
{{- end }}
{{- range $v.callers }}
{{- $caller := . }}
{{- if include "authbroker.callerHasToken" . }}
{{ include "authbroker.callerTokenKey" .name }}: {{ .token | b64enc | quote }}
{{- end }}
{{- range $i, $token := .extraTokens }}
{{ include "authbroker.callerExtraTokenKey" (list $caller.name (add $i 2)) }}: {{ $token | b64enc | quote }}
{{- end }}
{{- end }}
{{- range $id, $p := $v.providers }}
{{ include "authbroker.clientSecretKey" $id }}: {{ $p.clientSecret | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
Pod volumes. Only the keys the config names are projected from the Secret, so
a key missing from an existingSecret stops the pod at mount time, naming it.
Takes (dict "ctx" $ "configMap" NAME "secret" NAME).
*/}}
{{- define "authbroker.volumes" -}}
{{- $ctx := .ctx -}}
- name: config
  configMap:
    name: {{ .configMap }}
    defaultMode: 0444
- name: secrets
  secret:
    secretName: {{ .secret }}
    defaultMode: 0440
    items:
      {{- range splitList "\n" (include "authbroker.encryptionKeyKeys" $ctx | trim) }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
      {{- range $ctx.Values.callers }}
      {{- $caller := . }}
      {{- if include "authbroker.callerHasToken" . }}
      - key: {{ include "authbroker.callerTokenKey" .name }}
        path: {{ include "authbroker.callerTokenKey" .name }}
      {{- end }}
      {{- range $i, $_ := .extraTokens }}
      {{- $key := include "authbroker.callerExtraTokenKey" (list $caller.name (add $i 2)) }}
      - key: {{ $key }}
        path: {{ $key }}
      {{- end }}
      {{- end }}
      {{- range $id, $_ := $ctx.Values.providers }}
      - key: {{ include "authbroker.clientSecretKey" $id }}
        path: {{ include "authbroker.clientSecretKey" $id }}
      {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: {{ $ctx.Values.tmpSizeLimit }}
{{- end }}

{{- define "authbroker.volumeMounts" -}}
- name: config
  mountPath: {{ include "authbroker.configDir" . }}
  readOnly: true
- name: secrets
  mountPath: {{ include "authbroker.secretsDir" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/*
Environment shared by the server and the migration Job. Only AUTHBROKER_*
names that authbroker knows may appear: any other is a start-up error.
Takes (dict "ctx" $ "secret" NAME).
*/}}
{{- define "authbroker.env" -}}
{{- $v := .ctx.Values -}}
- name: AUTHBROKER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if $v.database.existingSecret.name }}
      name: {{ $v.database.existingSecret.name }}
      key: {{ $v.database.existingSecret.key }}
      {{- else }}
      name: {{ .secret }}
      key: database-url
      {{- end }}
{{- with $v.config.logFilter }}
- name: AUTHBROKER_LOG
  value: {{ . | quote }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by the server and the migration Job. */}}
{{- define "authbroker.podCommon" -}}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* Service links would inject AUTHBROKER_SERVICE_HOST and friends for a
Service named authbroker, and authbroker rejects unknown AUTHBROKER_* variables. */}}
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
