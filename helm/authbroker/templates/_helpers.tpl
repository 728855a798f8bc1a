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

{{/* Label that admits a client pod through the NetworkPolicy. */}}
{{- define "authbroker.clientLabel" -}}
{{- printf "%s-client" (include "authbroker.fullname" . | trunc 56 | trimSuffix "-") }}
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

{{/* Secret keys (and file names under secretsDir). */}}
{{- define "authbroker.callerTokenKey" -}}caller-{{ . }}-token{{- end }}
{{- define "authbroker.clientSecretKey" -}}provider-{{ . }}-client-secret{{- end }}

{{/*
Checks that need more than one value, with a message naming what to set.
Included by every template that renders a workload, so any render fails early.
*/}}
{{- define "authbroker.validate" -}}
{{- $v := .Values }}
{{- if not $v.existingSecret }}
  {{- if not $v.secrets.encryptionKey }}
    {{- fail "secrets.encryptionKey is required: set it to the output of `authbroker generate-key` (base64 of 32 bytes; keep a copy, losing it makes every stored token unreadable), or set existingSecret" }}
  {{- end }}
  {{- if and (not $v.database.existingSecret.name) (not $v.database.url) }}
    {{- fail "database.url is required: postgres://user:password@host:5432/dbname (or set database.existingSecret.name, or existingSecret)" }}
  {{- end }}
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
  {{- if and (not $v.existingSecret) (not $c.token) }}
    {{- fail (printf "callers[%d].token is required for caller %q (or set existingSecret with key %s)" $i $c.name (include "authbroker.callerTokenKey" $c.name)) }}
  {{- end }}
{{- end }}
{{- range $id, $p := $v.providers }}
  {{- if and (not $v.existingSecret) (not $p.clientSecret) }}
    {{- fail (printf "providers.%s.clientSecret is required (or set existingSecret with key %s)" $id (include "authbroker.clientSecretKey" $id)) }}
  {{- end }}
{{- end }}
{{- if $v.serviceMonitor.enabled }}
  {{- fail "serviceMonitor.enabled: authbroker has no metrics port to scrape; it pushes metrics over OTLP, so set otel.enabled and otel.endpoint instead" }}
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
The TOML config file. Strings and lists go through toJson: a JSON string or
array of strings is also a valid TOML one.
*/}}
{{- define "authbroker.config" -}}
{{- $v := .Values }}
{{- $c := $v.config }}
{{- $secrets := include "authbroker.secretsDir" . -}}
# authbroker configuration rendered by the {{ .Chart.Name }} chart {{ .Chart.Version }};
# the keys are documented in authbroker's README. Secrets are files mounted
# from a Secret; database_url comes from AUTHBROKER_DATABASE_URL.
listen = {{ printf "%s:%d" $c.listenAddress (int $c.port) | toJson }}
migrate_on_start = false
log_format = {{ $c.logFormat | toJson }}
state_ttl_secs = {{ int64 $c.stateTtlSecs }}
encryption_key_file = {{ printf "%s/encryption-key" $secrets | toJson }}
encryption_key_id = {{ $c.encryptionKeyId | toJson }}
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
{{- range $v.callers }}

[[callers]]
name = {{ .name | toJson }}
token_file = {{ printf "%s/%s" $secrets (include "authbroker.callerTokenKey" .name) | toJson }}
{{- end }}
{{- /* values key, TOML key; rendered in this order when present */}}
{{- $knobs := list
  (list "environment" "environment")
  (list "allowPasswordGrant" "allow_password_grant")
  (list "authorizeUrl" "authorize_url")
  (list "tokenUrl" "token_url")
  (list "userinfoUrl" "userinfo_url")
  (list "usageUrl" "usage_url")
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
the encryption key, one token per caller and one client secret per provider.
*/}}
{{- define "authbroker.secretData" -}}
{{- $v := .Values -}}
encryption-key: {{ $v.secrets.encryptionKey | b64enc | quote }}
{{- if not $v.database.existingSecret.name }}
database-url: {{ $v.database.url | b64enc | quote }}
{{- end }}
{{- range $v.callers }}
{{ include "authbroker.callerTokenKey" .name }}: {{ .token | b64enc | quote }}
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
      - key: encryption-key
        path: encryption-key
      {{- range $ctx.Values.callers }}
      - key: {{ include "authbroker.callerTokenKey" .name }}
        path: {{ include "authbroker.callerTokenKey" .name }}
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
