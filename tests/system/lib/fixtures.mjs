// Builds a small but complete set of resources in one organisation, so that
// tests can walk every endpoint against real rows.
export async function populate(argus, token) {
  const ok = async (method, path, body) => {
    const r = await argus.req(method, path, { token, body });
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
    return r.json;
  };
  const deviceType = await ok('POST', '/api/v1/device-types', { name: 'Thermo', processingMode: 'endpoint', protocol: 'http' });
  const gatewayType = await ok('POST', '/api/v1/device-types', { name: 'Hub', processingMode: 'gateway' });
  const gateway = await ok('POST', '/api/v1/devices', { name: 'GW-1', deviceTypeId: gatewayType.id, deviceRole: 'gateway' });
  const device = await ok('POST', '/api/v1/devices', {
    name: 'T-1', deviceTypeId: deviceType.id, parentDeviceId: gateway.id, logicalIdentifier: 'tag-1',
    location: { lat: 51.5, lng: -0.12 }, attributes: { floor: 2 }, firmwareVersion: '1.0.0',
  });
  const assetTypeRoot = await ok('POST', '/api/v1/asset-types', { name: 'Site' });
  const assetType = await ok('POST', '/api/v1/asset-types', { name: 'Pump', parentId: assetTypeRoot.id });
  const space = await ok('POST', '/api/v1/spaces', { name: 'Building 1', spaceType: 'building' });
  const site = await ok('POST', '/api/v1/assets', { name: 'Site A', assetTypeId: assetTypeRoot.id, spaceId: space.id });
  const asset = await ok('POST', '/api/v1/assets', { name: 'Pump 1', assetTypeId: assetType.id, parentId: site.id });
  const person = await ok('POST', '/api/v1/persons', { name: 'Pat', email: 'pat@example.test' });
  const activityType = await ok('POST', '/api/v1/activity-types', { name: 'Inspect', category: 'person_to_system' });
  const activity = await ok('POST', '/api/v1/activities', { title: 'Check pump', category: 'person_to_system', activityTypeId: activityType.id, assetId: asset.id, priority: 'high' });
  const key = await ok('POST', `/api/v1/devices/${device.id}/api-keys`, { name: 'main' });
  const me = await ok('GET', '/api/v1/auth/me');
  // A dead-letter entry: telemetry of a device deleted afterwards, replayed.
  const doomed = await ok('POST', '/api/v1/devices', { name: 'doomed', deviceTypeId: deviceType.id });
  const doomedKey = await ok('POST', `/api/v1/devices/${doomed.id}/api-keys`, {});
  const sent = await argus.req('POST', '/api/v1/telemetry/ingest', { apiKey: doomedKey.key, body: { deviceId: doomed.id, metrics: { t: 1 } } });
  if (sent.status !== 202) throw new Error(`ingest: ${sent.status} ${sent.text}`);
  await ok('DELETE', `/api/v1/devices/${doomed.id}`);
  const now = Date.now();
  await ok('POST', '/api/v1/telemetry/replay', { startTime: new Date(now - 3600_000).toISOString(), endTime: new Date(now + 60_000).toISOString(), deviceId: doomed.id });
  const dlq = (await ok('GET', '/api/v1/dlq')).data[0];
  if (!dlq) throw new Error('no DLQ entry was made');
  return { deviceType, gatewayType, gateway, device, assetTypeRoot, assetType, space, site, asset, person, activityType, activity, key, user: me, dlq };
}
