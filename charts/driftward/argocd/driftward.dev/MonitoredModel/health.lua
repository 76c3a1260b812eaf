-- Argo CD health check for driftward.dev/MonitoredModel.
-- Runs in Argo CD's Lua 5.1 sandbox without the string library, so it only
-- concatenates with "..". Reads status only; the operator never writes spec.
--   Degraded:    RolledBack=True or Degraded=True (with that condition's
--                message), or the rollout failed (phase Failed, Ready's message)
--   Progressing: no status yet, status older than the spec, a candidate rolling
--                out or in its promotion window, or Ready not yet True
--   Healthy:     status.activeVersion is the spec's version and Ready=True
local hs = {}

local function condition(status, type)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == type then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function messageOf(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  return fallback
end

local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the driftward operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the driftward operator to observe generation " .. tostring(generation)
  return hs
end

local rolledBack = condition(status, "RolledBack")
if isTrue(rolledBack) then
  hs.status = "Degraded"
  hs.message = messageOf(rolledBack, "The model was rolled back")
  return hs
end

local degraded = condition(status, "Degraded")
if isTrue(degraded) then
  hs.status = "Degraded"
  hs.message = messageOf(degraded, "The model's performance is degraded")
  return hs
end

local ready = condition(status, "Ready")
if status.phase == "Failed" then
  hs.status = "Degraded"
  hs.message = messageOf(ready, "The model's rollout failed")
  return hs
end

-- Drift that has not (yet) led to a rollback is reported, not judged: the
-- policy may only alert, or still be counting consecutive breaches.
local drifted = condition(status, "Drifted")
local driftNote = ""
if isTrue(drifted) then
  driftNote = "; drift detected: " .. messageOf(drifted, "see the Drifted condition")
end

if status.candidateVersion ~= nil and status.candidateVersion ~= "" then
  hs.status = "Progressing"
  hs.message = messageOf(condition(status, "Progressing"),
    "Candidate version " .. status.candidateVersion .. " is rolling out") .. driftNote
  return hs
end

local wanted = nil
if obj.spec ~= nil and obj.spec.model ~= nil then
  wanted = obj.spec.model.version
end
if isTrue(ready) and status.activeVersion ~= nil and status.activeVersion == wanted then
  hs.status = "Healthy"
  hs.message = messageOf(ready, "Version " .. status.activeVersion .. " is serving") .. driftNote
  return hs
end

hs.status = "Progressing"
hs.message = messageOf(ready, "Waiting for version " .. tostring(wanted) .. " to serve") .. driftNote
return hs
