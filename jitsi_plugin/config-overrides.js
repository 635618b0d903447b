/*
 * Jitsi Meet config.js overrides for a teleconsult host: privacy first.
 *
 * Append this file to the end of the host's config, after `var config = { ... };`
 * (Debian: /etc/jitsi/meet/meet.example.org-config.js; docker-jitsi-meet:
 * custom-config.js). It only assigns properties of the existing `config` object.
 * Option names follow Jitsi Meet's config.js; deprecated spellings that older
 * releases still read are noted in comments.
 */

/* global config */

// Never contact another server: no Gravatar, no third-party avatars or services.
config.disableThirdPartyRequests = true;
config.gravatar = { disabled: true };               // older: gravatarBaseURL
config.giphy = { enabled: false };

// No analytics or statistics collection of any kind.
config.analytics = {
    disabled: true,
    rtcstatsEnabled: false
};
config.enableDisplayNameInStats = false;
config.enableEmailInStats = false;
config.feedbackPercentage = 0;

// STUN for peer-to-peer calls from this host, not meet-jit-si-turnrelay.jitsi.net.
// (Debian's jitsi-meet-turnserver serves STUN/TURN on the Jitsi domain.)
config.p2p = config.p2p || {};
config.p2p.stunServers = [
    { urls: 'stun:meet.example.org:3478' }
];

// Stay in the browser: no "open the app" interstitial on phones.
config.deeplinking = { disabled: true };            // older: disableDeepLinking: true

// teleconsult already tested devices (pre-call test) and ran its own waiting
// room, so the pre-join screen is skipped; the name comes from the JWT and
// cannot be edited. Set enabled: true to let people pick devices again.
config.prejoinConfig = {
    enabled: false,                                  // older: prejoinPageEnabled
    hideDisplayName: true,
    hideExtraJoinButtons: ['no-audio', 'by-phone']
};
config.readOnlyName = true;

// Nothing is recorded, streamed or transcribed.
config.recordingService = { enabled: false, sharingEnabled: false }; // older: fileRecordingsEnabled
config.localRecording = { disable: true };
config.liveStreaming = { enabled: false };           // older: liveStreamingEnabled
config.transcription = { enabled: false };           // older: transcribingEnabled
config.fileRecordingsEnabled = false;
config.liveStreamingEnabled = false;

// Rooms are created by teleconsult only: no invitations, no recent-rooms list,
// no welcome page, no Jitsi lobby (teleconsult has its own waiting room).
config.disableInviteFunctions = true;
config.doNotStoreRoom = true;
config.welcomePage = { disabled: true };             // older: enableWelcomePage: false
config.securityUi = { hideLobbyButton: true };
