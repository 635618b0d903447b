// Embeds the Jitsi call with the IFrame API served by the configured Jitsi domain.

function loadExternalApi(url) {
  if (window.JitsiMeetExternalAPI) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error("external_api.js could not be loaded"));
    document.head.appendChild(script);
  });
}

export async function embedCall(access, parentNode, displayName) {
  await loadExternalApi(access.external_api_url);
  return new window.JitsiMeetExternalAPI(access.domain, {
    roomName: access.room,
    jwt: access.jwt,
    parentNode,
    width: "100%",
    height: "100%",
    userInfo: { displayName },
    configOverwrite: {
      prejoinConfig: { enabled: false },
      disableDeepLinking: true,
      disableThirdPartyRequests: true,
    },
  });
}
