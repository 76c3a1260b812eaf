-- Argo CD resource actions for driftward.dev/MonitoredModel. Each action sets
-- one of the operator's request annotations to a new value; the operator acts
-- once per value, records it in status.requests and never edits the spec.
-- An action is offered only when the operator could carry it out.
local actions = {}
local status = obj.status or {}

local function present(value)
  return value ~= nil and value ~= ""
end

local function rolledBack()
  if status.conditions == nil then
    return false
  end
  for _, c in ipairs(status.conditions) do
    if c.type == "RolledBack" then
      return c.status == "True"
    end
  end
  return false
end

-- The same target the operator picks: the stable version when it is not the
-- active one, else the last promoted version that was superseded.
local function hasRollbackTarget()
  if present(status.stableVersion) and (status.stableVersion ~= status.activeVersion
      or status.stableDigest ~= status.activeDigest) then
    return true
  end
  if status.history == nil then
    return false
  end
  for _, entry in ipairs(status.history) do
    local active = entry.version == status.activeVersion and entry.sha256 == status.activeDigest
    if not active and present(entry.promotedAt) and entry.outcome == "Superseded" then
      return true
    end
  end
  return false
end

actions["rollback"] = {["disabled"] = not hasRollbackTarget()}
actions["promote"] = {["disabled"] = not present(status.candidateVersion)}
actions["retry"] = {["disabled"] = not rolledBack()}
return actions
