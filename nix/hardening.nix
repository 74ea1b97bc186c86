# The sandbox shared by pgarchive's own units (drill, prune, notify): a
# transient user, a read-only system, no capabilities, IP only for rclone and
# webhooks plus the journal's socket. Units add what they need on top, e.g. a
# writable metrics directory (ReadWritePaths=) or a group
# (SupplementaryGroups=), and the drill some leeway for PostgreSQL.
{
  DynamicUser = true;
  PrivateTmp = true;
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateDevices = true;
  NoNewPrivileges = true;
  CapabilityBoundingSet = "";
  AmbientCapabilities = "";
  RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" ];
  SystemCallFilter = [ "@system-service" "~@privileged" ];
  SystemCallErrorNumber = "EPERM";
  SystemCallArchitectures = "native";
  ProtectKernelTunables = true;
  ProtectKernelModules = true;
  ProtectKernelLogs = true;
  ProtectControlGroups = true;
  ProtectClock = true;
  ProtectHostname = true;
  ProtectProc = "invisible";
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  LockPersonality = true;
  RemoveIPC = true;
  UMask = "0077";
}
