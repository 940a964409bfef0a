-- Argo CD health check for every upkeep.dev kind: MaintenanceWindow, Device, FirmwareUpgrade,
-- PatchJob, Host, DevicePatch and UpgradeTask. It reads only what every kind has: spec.suspend
-- (where the kind has it), metadata.generation, status.observedGeneration and the kstatus
-- conditions Ready, Reconciling and Stalled. The rules, in this order (the first that applies
-- decides):
--   1. spec.suspend is true                                   -> Suspended
--   2. no status, or status.observedGeneration below
--      metadata.generation (the operator has not seen the change yet) -> Progressing
--   3. Stalled is True                                        -> Degraded
--   4. Reconciling is True                                    -> Progressing
--   5. Ready is True                                          -> Healthy
--   6. anything else                                          -> Progressing
-- The message is the deciding condition's. Written for Lua 5.1 (Argo CD runs gopher-lua).
-- Install: one argocd-cm key per kind, resource.customizations.health.upkeep.dev_<Kind>, each
-- holding this file (see the chart's README).

local function condition(kind)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

local function holds(c)
  return c ~= nil and c.status == "True"
end

local function verdict(status, message)
  return { status = status, message = message }
end

local function message_of(c, otherwise)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return otherwise
end

if obj.spec ~= nil and obj.spec.suspend == true then
  return verdict("Suspended", "suspended: spec.suspend is true")
end

if obj.status == nil then
  return verdict("Progressing", "waiting for the operator: no status yet")
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  return verdict("Progressing", "waiting for the operator to observe generation " .. tostring(generation)
    .. " (the status is of generation " .. tostring(observed or "none") .. ")")
end

local stalled = condition("Stalled")
if holds(stalled) then
  return verdict("Degraded", message_of(stalled, "Stalled"))
end

local reconciling = condition("Reconciling")
if holds(reconciling) then
  return verdict("Progressing", message_of(reconciling, "Reconciling"))
end

local ready = condition("Ready")
if holds(ready) then
  return verdict("Healthy", message_of(ready, "Ready"))
end

return verdict("Progressing", message_of(ready, "waiting for the Ready condition"))
