// Inside WeChat only: sets the title, description and image that sharing the guide page shows, through
// the JS-SDK (wx.config signed by /jssdk/config). Elsewhere it does nothing.
(function () {
  'use strict';
  var share = document.getElementById('share');
  if (!share || !/MicroMessenger/i.test(navigator.userAgent)) return;
  function configure() {
    var page = location.href.split('#')[0];
    fetch('/jssdk/config?url=' + encodeURIComponent(page), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (c) {
        var script = document.createElement('script');
        script.src = 'https://res.wx.qq.com/open/js/jweixin-1.6.0.js';
        script.onload = function () {
          var data = {
            title: share.dataset.title,
            desc: share.dataset.desc,
            link: page,
            imgUrl: share.dataset.image
          };
          window.wx.config({
            debug: false,
            appId: c.appId,
            timestamp: c.timestamp,
            nonceStr: c.nonceStr,
            signature: c.signature,
            jsApiList: ['updateAppMessageShareData', 'updateTimelineShareData']
          });
          window.wx.ready(function () {
            window.wx.updateAppMessageShareData(data);
            window.wx.updateTimelineShareData(data);
          });
        };
        document.head.appendChild(script);
      })
      .catch(function () { /* sharing keeps WeChat's defaults */ });
  }
  // WeChat's bridge exists only in WeChat's own browser; a desktop browser faking the User-Agent skips.
  if (window.WeixinJSBridge) configure();
  else document.addEventListener('WeixinJSBridgeReady', configure, false);
})();
